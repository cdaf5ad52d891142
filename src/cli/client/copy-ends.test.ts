/**
 * The ends `wharf copy` names (copy-ends.ts), skopeo's way: a registry reference, or an archive
 * transport and a path, with `oci:` and `oci-archive:` taking an optional `:<ref>` suffix after the
 * path (the first ':' ends the path, as in skopeo) that must be a ref.name of the image spec's grammar.
 */
import { describe, expect, it } from 'vitest';
import { parseCopyEnd } from './copy-ends.js';

describe('parseCopyEnd', () => {
  it('takes a path alone, and a ref.name after it for oci: and oci-archive:', () => {
    expect(parseCopyEnd('oci:./layout')).toStrictEqual({ kind: 'oci', path: './layout' });
    expect(parseCopyEnd('oci-archive:/tmp/a.tar')).toStrictEqual({ kind: 'oci-archive', path: '/tmp/a.tar' });
    expect(parseCopyEnd('docker-archive:a.tar')).toStrictEqual({ kind: 'docker-archive', path: 'a.tar' });
    expect(parseCopyEnd('oci:./layout:v1')).toStrictEqual({ kind: 'oci', path: './layout', refName: 'v1' });
    // A full name with a port: the path ends at the first ':'.
    expect(parseCopyEnd('oci-archive:b.tar:127.0.0.1:5000/team/run:v1')).toStrictEqual({
      kind: 'oci-archive',
      path: 'b.tar',
      refName: '127.0.0.1:5000/team/run:v1',
    });
    expect(parseCopyEnd('oci:l:a--b.c_d@e+f/g')).toMatchObject({ refName: 'a--b.c_d@e+f/g' });
  });

  it('refuses an empty path, a ref.name outside the grammar, and a suffix on docker-archive:', () => {
    expect(() => parseCopyEnd('oci:')).toThrow(/oci: needs a path/);
    expect(() => parseCopyEnd('oci::v1')).toThrow(/oci: needs a path/);
    for (const bad of ['', 'v1/', '/v1', 'a b', 'v1:', '-v1', 'a//b', 'a---b']) {
      expect(() => parseCopyEnd(`oci:dir:${bad}`), bad).toThrow(
        expect.objectContaining({
          code: 'NAME_INVALID',
          message: expect.stringContaining('is no ref.name') as unknown,
        }),
      );
    }
    expect(() => parseCopyEnd('docker-archive:a.tar:team/app:v1')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED' }),
    );
  });

  it('reads anything else as a registry reference, docker:// or not', () => {
    expect(parseCopyEnd('docker://alpine:3.20')).toMatchObject({
      kind: 'registry',
      ref: { repository: 'library/alpine', tag: '3.20' },
    });
    expect(parseCopyEnd('127.0.0.1:5000/team/run:v1')).toMatchObject({
      kind: 'registry',
      ref: { registry: '127.0.0.1:5000', repository: 'team/run', tag: 'v1' },
    });
  });
});
