import { describe, expect, it } from 'vitest';
import { parseRoutePath } from './route-path.js';

describe('parseRoutePath', () => {
  it('reads each endpoint', () => {
    expect(parseRoutePath('/v2/')).toEqual({ kind: 'base' });
    expect(parseRoutePath('/v2')).toEqual({ kind: 'base' });
    expect(parseRoutePath('/v2/_catalog')).toEqual({ kind: 'catalog' });
    expect(parseRoutePath('/v2/a/b/blobs/sha256:ab')).toEqual({ kind: 'blob', name: 'a/b', digest: 'sha256:ab' });
    expect(parseRoutePath('/v2/a/blobs/uploads/')).toEqual({ kind: 'uploads', name: 'a' });
    expect(parseRoutePath('/v2/a/blobs/uploads')).toEqual({ kind: 'uploads', name: 'a' });
    expect(parseRoutePath('/v2/a/blobs/uploads/xyz')).toEqual({ kind: 'upload', name: 'a', id: 'xyz' });
    expect(parseRoutePath('/v2/a/manifests/latest')).toEqual({ kind: 'manifest', name: 'a', reference: 'latest' });
    expect(parseRoutePath('/v2/a/tags/list')).toEqual({ kind: 'tags', name: 'a' });
    expect(parseRoutePath('/v2/a/referrers/sha256:ab')).toEqual({ kind: 'referrers', name: 'a', digest: 'sha256:ab' });
  });

  it('takes the longest name that leaves an endpoint (a repository may be called x/blobs)', () => {
    expect(parseRoutePath('/v2/x/blobs/blobs/sha256:ab')).toEqual({
      kind: 'blob',
      name: 'x/blobs',
      digest: 'sha256:ab',
    });
    expect(parseRoutePath('/v2/x/manifests/manifests/v1')).toEqual({
      kind: 'manifest',
      name: 'x/manifests',
      reference: 'v1',
    });
  });

  it('keeps the raw path, so encoded separators and dot segments reach the name check untouched', () => {
    expect(parseRoutePath('/v2/a%2F..%2Fb/tags/list')).toEqual({ kind: 'tags', name: 'a%2F..%2Fb' });
    expect(parseRoutePath('/v2/../../etc/tags/list')).toEqual({ kind: 'tags', name: '../../etc' });
  });

  it('answers undefined for paths that are no endpoint', () => {
    expect(parseRoutePath('/v2/a')).toBeUndefined();
    expect(parseRoutePath('/v2/a/blobs/')).toBeUndefined();
    expect(parseRoutePath('/v3/a/tags/list')).toBeUndefined();
    expect(parseRoutePath('/')).toBeUndefined();
  });
});
