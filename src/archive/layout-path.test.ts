import { describe, expect, it } from 'vitest';
import { parseLayoutPath, requireSafePath } from './layout-path.js';

// Round 8b of the planted-bug audit: the refusals were tested with `..` and absolute paths only, so
// dropping the backslash check passed. A tar written on Windows (or by an attacker) may name
// `..\escape`: on Linux that is one odd file name, elsewhere a path out of the layout; both readers
// refuse it, with the same code as the other escapes, before anything else about the entry.
describe('requireSafePath', () => {
  it.each(['..\\escape', 'blobs\\sha256\\abc', 'blobs/sha256/a\\b', 'nul\0byte', '/etc/passwd', 'blobs/../../x'])(
    'refuses %j',
    (path) => {
      expect(() => requireSafePath(path)).toThrow(/escapes the layout/);
      expect(() => parseLayoutPath(path)).toThrow(expect.objectContaining({ code: 'NAME_INVALID' }));
    },
  );

  it('takes the layout names, ./ prefixed or not', () => {
    expect(requireSafePath('./blobs/sha256/')).toEqual(['blobs', 'sha256']);
    expect(parseLayoutPath('./index.json')).toEqual({ kind: 'index' });
    expect(parseLayoutPath('oci-layout')).toEqual({ kind: 'layout' });
  });
});

// The archive-import Stryker scope's survivors in layout-path.ts (docs/mutation-testing.md).
describe('parseLayoutPath: what a path means', () => {
  it('a blob is blobs/<algorithm>/<hex>, exactly three segments', () => {
    const hex = 'a'.repeat(64);
    expect(parseLayoutPath(`./blobs/sha256/${hex}`)).toEqual({ kind: 'blob', digest: `sha256:${hex}` });
    expect(parseLayoutPath(`blobs/sha256/${hex}/x`)).toEqual({ kind: 'other', path: `blobs/sha256/${hex}/x` });
    expect(parseLayoutPath('blobs/sha256')).toEqual({ kind: 'other', path: 'blobs/sha256' });
    expect(parseLayoutPath(`other/sha256/${hex}`)).toEqual({ kind: 'other', path: `other/sha256/${hex}` });
    expect(parseLayoutPath('./docs//readme.md')).toEqual({ kind: 'other', path: 'docs/readme.md' });
  });

  it('refuses a blob path that is no digest we can verify, naming it (at most 300 characters)', () => {
    expect(() => parseLayoutPath('blobs/sha256/abc')).toThrow(
      expect.objectContaining({
        code: 'DIGEST_INVALID',
        message: 'entry "blobs/sha256/abc" is not named by a digest we can verify',
      }),
    );
    const long = `blobs/md5/${'f'.repeat(400)}`;
    expect(() => parseLayoutPath(long)).toThrow(
      expect.objectContaining({
        message: `entry ${JSON.stringify(long.slice(0, 300))} is not named by a digest we can verify`,
      }),
    );
  });

  it('an unsafe path is shown at most 300 characters long', () => {
    const long = `/${'x'.repeat(400)}`;
    expect(() => requireSafePath(long)).toThrow(
      expect.objectContaining({
        code: 'NAME_INVALID',
        message: `entry ${JSON.stringify(long.slice(0, 300))} escapes the layout (absolute or unsafe path)`,
      }),
    );
  });
});
