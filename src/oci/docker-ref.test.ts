import { describe, expect, it } from 'vitest';
import { formatDockerRef, parseDockerRef, parseRegistryHost } from './docker-ref.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('docker reference normalisation', () => {
  it.each([
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['user/app', 'docker.io/user/app:latest'],
    ['index.docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['docker.io/library/alpine@' + digest, 'docker.io/library/alpine@' + digest],
    ['ghcr.io/o/r:v1@' + digest, 'ghcr.io/o/r:v1@' + digest],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/team/app:v1', '127.0.0.1:5000/team/app:v1'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    ['registry:5000/app', 'registry:5000/app:latest'],
  ])('%s → %s', (input, expected) => {
    expect(formatDockerRef(parseDockerRef(input))).toBe(expected);
  });

  it('keeps a bare repository without a tag when asked', () => {
    expect(parseDockerRef('alpine', { defaultTag: false })).toEqual({
      registry: 'docker.io',
      repository: 'library/alpine',
    });
  });

  it.each(['Alpine', 'alpine:', 'alpine@sha256:zz', '', 'a//b', 'alpine:-x'])('refuses %j', (input) => {
    expect(() => parseDockerRef(input)).toThrow(/NAME_INVALID|not an image reference/);
  });

  it('reads registry hosts', () => {
    expect(parseRegistryHost('https://index.docker.io/')).toBe('docker.io');
    expect(parseRegistryHost('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(() => parseRegistryHost('a/b')).toThrow();
  });
});
