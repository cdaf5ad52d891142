import { describe, expect, it } from 'vitest';
import type { Digest } from '../oci/digest.js';
import type { RepoName } from '../oci/reference.js';
import { refNameAnnotation } from './layout-names.js';
import { containerdNameAnnotation, createNameMapper, localNameAnnotation, pickRefName } from './ref-names.js';

const digest = `sha256:${'b'.repeat(64)}` as Digest;

describe('createNameMapper: the names an OCI layout gives its images (decision 0011)', () => {
  const names = createNameMapper();

  it.each([
    // Without a registry host, a name is read as docker reads it (what skopeo's oci-archive:f:alpine:3.20 meant).
    ['alpine:3.20', 'docker.io/library/alpine', '3.20'],
    ['team/app:v1', 'docker.io/team/app', 'v1'],
    [`alpine@${digest}`, 'docker.io/library/alpine', digest],
    // With one, it is kept; a port becomes the mirror's host form.
    ['docker.io/library/alpine:3.20', 'docker.io/library/alpine', '3.20'],
    ['ghcr.io/org/tool:1', 'ghcr.io/org/tool', '1'],
    [`ghcr.io/org/tool@${digest}`, 'ghcr.io/org/tool', digest],
    ['localhost:5000/app:dev', 'localhost-5000/app', 'dev'],
  ])('%s → %s %s', (refName, name, reference) => {
    expect(names(refName, digest)).toEqual({ name, reference });
  });

  it("keeps a name wharf's export marks local, and one the target's local patterns match", () => {
    expect(names('team/app:v1', digest, { [localNameAnnotation]: 'true' })).toEqual({
      name: 'team/app',
      reference: 'v1',
    });
    const withPatterns = createNameMapper({ isLocal: (name) => name.startsWith('team/') });
    expect(withPatterns('team/app:v1', digest)).toEqual({ name: 'team/app', reference: 'v1' });
    expect(withPatterns('alpine:3.20', digest)).toEqual({ name: 'docker.io/library/alpine', reference: '3.20' });
  });

  it('--name replaces the repository of entries without a host, never of one with a host', () => {
    const named = createNameMapper({ name: 'mirror/app' as RepoName });
    expect(named('alpine:3.20', digest)).toEqual({ name: 'mirror/app', reference: '3.20' });
    expect(named('v1', digest)).toEqual({ name: 'mirror/app', reference: 'v1' });
    expect(named(undefined, digest)).toEqual({ name: 'mirror/app', reference: digest });
    expect(named('ghcr.io/org/tool:1', digest)).toEqual({ name: 'ghcr.io/org/tool', reference: '1' });
  });

  it('--name also replaces a name that is local (marked by the export, or matched by the local patterns)', () => {
    // Round 8b: checking the local marks before --name kept `team/app` and dropped the operator's --name.
    const named = createNameMapper({ name: 'mirror/app' as RepoName, isLocal: (n) => n.startsWith('team/') });
    expect(named('team/app:v1', digest, { [localNameAnnotation]: 'true' })).toEqual({
      name: 'mirror/app',
      reference: 'v1',
    });
    expect(named('team/other:v2', digest)).toEqual({ name: 'mirror/app', reference: 'v2' });
  });

  it('refuses a bare tag or no ref.name without --name, naming the fix', () => {
    expect(() => names('v1', digest)).toThrow(/"v1", a tag without a repository: pass --name/);
    expect(() => names(undefined, digest)).toThrow(/without a ref.name annotation: pass --name/);
    expect(() => names('Not A Ref!', digest)).toThrow(/is not an image reference/);
  });
});

// The archive-import Stryker scope's survivors in ref-names.ts (docs/mutation-testing.md).
describe('pickRefName: ref.name, or containerd’s full name beside a bare one', () => {
  const full = 'docker.io/library/alpine:3.20';
  it.each([
    [{ [refNameAnnotation]: '3.20', [containerdNameAnnotation]: full }, full],
    [{ [containerdNameAnnotation]: full }, full],
    [{ [refNameAnnotation]: 'team/app:v1', [containerdNameAnnotation]: full }, 'team/app:v1'],
    [{ [refNameAnnotation]: '3.20', [containerdNameAnnotation]: 'not a ref' }, '3.20'],
    [{ [refNameAnnotation]: '3.20' }, '3.20'],
    [{}, undefined],
    [undefined, undefined],
  ])('%j → %s', (annotations, picked) => {
    expect(pickRefName(annotations)).toBe(picked);
  });
});

describe('createNameMapper: refusals', () => {
  const names = createNameMapper();

  it('a name without a host too long once docker.io/ is added: NAME_INVALID, shown at most 300 characters', () => {
    const long = `${'a'.repeat(250)}:v1`;
    expect(() => names(long, digest)).toThrow(
      expect.objectContaining({
        code: 'NAME_INVALID',
        message: `index.json: ${JSON.stringify(long)} is too long once docker.io/ is added`,
      }),
    );
    // The longest a name and a tag can be (255 + 128): past the 300 shown.
    const longer = `${'a'.repeat(250)}:${'t'.repeat(128)}`;
    expect(() => names(longer, digest)).toThrow(
      expect.objectContaining({
        message: `index.json: ${JSON.stringify(longer.slice(0, 300))} is too long once docker.io/ is added`,
      }),
    );
  });

  it('no image reference: NAME_INVALID, shown at most 300 characters', () => {
    const long = `Not A Ref ${'x'.repeat(400)}`;
    expect(() => names(long, digest)).toThrow(
      expect.objectContaining({
        code: 'NAME_INVALID',
        message: `index.json: ${JSON.stringify(long.slice(0, 300))} is not an image reference`,
      }),
    );
  });
});
