/**
 * @module archive/layout-path
 * What an entry's path means inside an OCI layout, refusing any path that
 * could escape it: absolute, `..` segments, backslashes, NUL. Only the
 * layout's own names matter; anything else is read past and ignored.
 */
import { parseDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { indexFile, layoutFile } from './layout-names.js';

export type LayoutPath =
  { kind: 'layout' } | { kind: 'index' } | { kind: 'blob'; digest: Digest } | { kind: 'other'; path: string };

/** The path's segments, refusing any that could escape the layout; checked before anything else about an entry. */
export function requireSafePath(raw: string): string[] {
  const shown = JSON.stringify(raw.slice(0, 300));
  if (raw.startsWith('/') || raw.includes('\\') || raw.includes('\0')) {
    throw new OciError('NAME_INVALID', `entry ${shown} escapes the layout (absolute or unsafe path)`);
  }
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new OciError('NAME_INVALID', `entry ${shown} escapes the layout (..)`);
  return segments;
}

export function parseLayoutPath(raw: string): LayoutPath {
  const shown = JSON.stringify(raw.slice(0, 300));
  const segments = requireSafePath(raw);
  const path = segments.join('/');
  if (path === layoutFile) return { kind: 'layout' };
  if (path === indexFile) return { kind: 'index' };
  if (segments[0] === 'blobs' && segments.length === 3) {
    const digest = parseDigest(`${segments[1]}:${segments[2]}`);
    if (digest === undefined)
      throw new OciError('DIGEST_INVALID', `entry ${shown} is not named by a digest we can verify`);
    return { kind: 'blob', digest };
  }
  return { kind: 'other', path };
}
