import { describe, expect, it } from 'vitest';
import { parseDigest, requireDigest } from './digest.js';
import { parseReference, parseRepoName, parseTag } from './reference.js';

const sha256 = `sha256:${'a'.repeat(64)}`;
const sha512 = `sha512:${'b'.repeat(128)}`;

describe('names, tags and digests', () => {
  it('accepts names of the spec grammar, including registry-host prefixes', () => {
    for (const name of ['a', 'library/alpine', 'docker.io/library/alpine', 'a-b__c.d/e--f', 'ghcr.io/org/app']) {
      expect(parseRepoName(name)).toBe(name);
    }
  });
  it('refuses names outside it: traversal, upper case, separators at the ends, too long', () => {
    for (const name of [
      '',
      '..',
      'a/../b',
      '../etc',
      'A',
      'a/',
      '/a',
      'a//b',
      'a_',
      'a:5000/b',
      'a%2fb',
      'x'.repeat(256),
    ]) {
      expect(parseRepoName(name)).toBeUndefined();
    }
  });
  // Round 5 of the planted-bug audit: the 255-character bound at its edge, not only past it.
  it('reads names of up to 255 characters', () => {
    expect(parseRepoName('a'.repeat(255))).toBe('a'.repeat(255));
    expect(parseRepoName(`team/${'b'.repeat(250)}`)).toBe(`team/${'b'.repeat(250)}`);
    expect(parseRepoName(`team/${'b'.repeat(251)}`)).toBeUndefined();
  });
  it('reads tags of up to 128 characters', () => {
    expect(parseTag('v1.2.3_rc-1')).toBe('v1.2.3_rc-1');
    expect(parseTag('a'.repeat(128))).toBeDefined();
    expect(parseTag('a'.repeat(129))).toBeUndefined();
    expect(parseTag('.INVALID_MANIFEST_NAME')).toBeUndefined();
    expect(parseTag('-x')).toBeUndefined();
  });
  it('reads sha256 and sha512 digests, lower-case hex only', () => {
    expect(parseDigest(sha256)).toBe(sha256);
    expect(parseDigest(sha512)).toBe(sha512);
    expect(parseDigest(`sha256:${'A'.repeat(64)}`)).toBeUndefined();
    expect(parseDigest(`sha256:${'a'.repeat(63)}`)).toBeUndefined();
    expect(parseDigest('sha256:totallywrong')).toBeUndefined();
  });
  it('tells an unsupported algorithm from a malformed digest', () => {
    expect(() => requireDigest(`sha384:${'a'.repeat(96)}`)).toThrow(/unsupported digest algorithm/);
    expect(() => requireDigest('nope')).toThrow(/invalid digest/);
    expect(() => requireDigest(undefined)).toThrow(/required/);
  });
  it('reads a reference as a digest when it has a colon, else as a tag', () => {
    expect(parseReference(sha256)).toEqual({ kind: 'digest', digest: sha256 });
    expect(parseReference('latest')).toEqual({ kind: 'tag', tag: 'latest' });
    expect(parseReference('sha256:baddigeststring')).toBeUndefined();
  });
});
