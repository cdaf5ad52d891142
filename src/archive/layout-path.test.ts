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
