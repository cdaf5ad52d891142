import { describe, expect, it } from 'vitest';
import type { Digest } from '../oci/digest.js';
import type { RepoName } from '../oci/reference.js';
import { dockerImageRefs, normalizeDockerRef } from './docker-names.js';

const digest = `sha256:${'a'.repeat(64)}` as Digest;

describe('normalizeDockerRef: RepoTags read as docker reads them', () => {
  it.each([
    ['alpine:3.20', 'docker.io/library/alpine', '3.20'],
    ['team/app:v1', 'docker.io/team/app', 'v1'],
    ['docker.io/library/alpine:3.20', 'docker.io/library/alpine', '3.20'],
    ['index.docker.io/library/alpine:3.20', 'docker.io/library/alpine', '3.20'],
    ['ghcr.io/org/tool:1', 'ghcr.io/org/tool', '1'],
    ['localhost:5000/app:dev', 'localhost-5000/app', 'dev'],
    ['Registry.Example.test:443/app:1', 'registry.example.test-443/app', '1'],
    ['localhost/app:dev', 'localhost/app', 'dev'],
  ])('%s → %s:%s', (repoTag, name, tag) => {
    expect(normalizeDockerRef(repoTag)).toEqual({ name, reference: tag });
  });

  it.each(['alpine', 'Alpine:1', `alpine@${digest}`, 'a:b:c'])('refuses %s', (repoTag) => {
    expect(normalizeDockerRef(repoTag)).toBeUndefined();
  });
});

describe('dockerImageRefs', () => {
  it('--name replaces the repository and keeps each tag', () => {
    expect(dockerImageRefs(['alpine:3.20', 'alpine:latest'], digest, 'team/base' as RepoName)).toEqual([
      { name: 'team/base', reference: '3.20' },
      { name: 'team/base', reference: 'latest' },
    ]);
  });

  it('an image without RepoTags needs --name, then is kept by digest', () => {
    expect(() => dockerImageRefs([], digest)).toThrow(/has no RepoTags: pass --name/);
    expect(dockerImageRefs([], digest, 'team/x' as RepoName)).toEqual([{ name: 'team/x', reference: digest }]);
  });
});
