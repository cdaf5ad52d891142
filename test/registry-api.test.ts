/**
 * wharf's own choices on top of the spec, against a real server: catalog
 * pagination, byte-exact Docker and schema1 manifests, conditional GETs,
 * per-repository visibility, mounts, tag moves and ?tag= pushes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, pushBlob, pushImage, sha256, sha512 } from './support/http.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

let wharf: WharfHandle;
let base: string;
beforeAll(async () => {
  wharf = await startWharf();
  base = wharf.url;
});
afterAll(async () => wharf.close());

const headersOf = (r: Response, names: string[]): Record<string, string | null> =>
  Object.fromEntries(names.map((n) => [n, r.headers.get(n)]));

describe('catalog', () => {
  it('lists repositories in byte order with n/last pagination and a Link header', async () => {
    for (const name of ['cat/b', 'cat/a', 'cat/c', 'cat/a-b']) await pushBlob(base, name, `in ${name}`);
    const all = (await (await call(base, '/v2/_catalog')).json()) as { repositories: string[] };
    const mine = all.repositories.filter((r) => r.startsWith('cat/'));
    expect(mine).toEqual([...mine].sort());
    const first = await call(base, '/v2/_catalog?n=2&last=cat/');
    expect(((await first.json()) as { repositories: string[] }).repositories).toEqual(['cat/a', 'cat/a-b']);
    expect(first.headers.get('link')).toBe('</v2/_catalog?n=2&last=cat%2Fa-b>; rel="next"');
    const next = await call(base, '/v2/_catalog?n=2&last=cat%2Fa-b');
    expect(((await next.json()) as { repositories: string[] }).repositories).toEqual(['cat/b', 'cat/c']);
  });
});

describe('tags/list pages', () => {
  // Round 5 of the planted-bug audit: a Link only while a next page exists, none on a last page of exactly n.
  it('gives a Link while more tags follow, and none on a last page holding exactly n', async () => {
    for (const tag of ['a', 'b', 'c', 'd']) await pushImage(base, 'page/tags', tag, `page ${tag}`);
    const page = async (query: string): Promise<{ tags: string[]; link: string | null }> => {
      const response = await call(base, `/v2/page/tags/tags/list?${query}`);
      expect(response.status).toBe(200);
      return { tags: ((await response.json()) as { tags: string[] }).tags, link: response.headers.get('link') };
    };
    expect(await page('n=2')).toEqual({ tags: ['a', 'b'], link: '</v2/page/tags/tags/list?n=2&last=b>; rel="next"' });
    expect(await page('n=2&last=b')).toEqual({ tags: ['c', 'd'], link: null });
    expect(await page('n=4')).toEqual({ tags: ['a', 'b', 'c', 'd'], link: null });
    expect(await page('n=0')).toEqual({ tags: [], link: null });
  });
});

describe('manifests', () => {
  it('serves Docker schema2 manifest lists byte for byte with their stored Content-Type', async () => {
    const image = await pushImage(base, 'docker/list', 'amd64');
    const list = Buffer.from(
      `{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",\n   "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "${image.digest}", "size": ${image.bytes.length}, "platform": {"architecture": "amd64", "os": "linux"}}]\n}`,
    );
    const put = await call(base, '/v2/docker/list/manifests/multi', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.list.v2+json' },
      body: list,
    });
    expect(put.status).toBe(201);
    const get = await call(base, '/v2/docker/list/manifests/multi', {
      headers: { Accept: 'application/vnd.oci.image.index.v1+json' },
    });
    expect(get.headers.get('content-type')).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(Buffer.from(await get.arrayBuffer()).equals(list)).toBe(true);
  });

  it('refuses an index whose child manifests are not in the repository', async () => {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('nothing'), size: 7 }],
    });
    const put = await call(base, '/v2/docker/list/manifests/broken', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
      body: index,
    });
    expect(put.status).toBe(400);
  });

  it('stores and serves a schema1 manifest as pushed', async () => {
    const body = Buffer.from('{"schemaVersion":1,"name":"old/app","tag":"v1","fsLayers":[],"history":[]}');
    const put = await call(base, '/v2/old/app/manifests/v1', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
      body,
    });
    expect(put.status).toBe(201);
    const get = await call(base, '/v2/old/app/manifests/v1');
    expect(get.headers.get('content-type')).toBe('application/vnd.docker.distribution.manifest.v1+prettyjws');
    expect(Buffer.from(await get.arrayBuffer()).equals(body)).toBe(true);
  });

  it('answers HEAD with the same headers as GET, and If-None-Match with 304', async () => {
    const image = await pushImage(base, 'cond/app', 'v1');
    const names = ['content-type', 'content-length', 'docker-content-digest', 'etag'];
    const get = await call(base, '/v2/cond/app/manifests/v1');
    const head = await call(base, '/v2/cond/app/manifests/v1', { method: 'HEAD' });
    expect(headersOf(head, names)).toEqual(headersOf(get, names));
    expect(get.headers.get('etag')).toBe(`"${image.digest}"`);
    const again = await call(base, `/v2/cond/app/manifests/${image.digest}`, {
      headers: { 'If-None-Match': `"${image.digest}"` },
    });
    expect(again.status).toBe(304);
  });

  it('moves a tag to a new manifest and keeps the old one by digest', async () => {
    const one = await pushImage(base, 'move/app', 'latest', 'one');
    const two = await pushImage(base, 'move/app', 'latest', 'two');
    expect((await call(base, '/v2/move/app/manifests/latest')).headers.get('docker-content-digest')).toBe(two.digest);
    expect((await call(base, `/v2/move/app/manifests/${one.digest}`)).status).toBe(200);
  });

  it('deleting a tag keeps the manifest; deleting the digest drops every tag on it', async () => {
    const image = await pushImage(base, 'del/app', 'a');
    await call(base, `/v2/del/app/manifests/${image.digest}?tag=b&tag=c`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: image.bytes,
    });
    expect((await call(base, '/v2/del/app/manifests/a', { method: 'DELETE' })).status).toBe(202);
    expect((await call(base, '/v2/del/app/manifests/a')).status).toBe(404);
    expect((await call(base, `/v2/del/app/manifests/${image.digest}`)).status).toBe(200);
    expect((await call(base, `/v2/del/app/manifests/${image.digest}`, { method: 'DELETE' })).status).toBe(202);
    for (const tag of ['b', 'c']) expect((await call(base, `/v2/del/app/manifests/${tag}`)).status).toBe(404);
    const tags = (await (await call(base, '/v2/del/app/tags/list')).json()) as { tags: string[] };
    expect(tags.tags).toEqual([]);
    expect((await call(base, `/v2/del/app/manifests/${image.digest}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('answers a sha512 reference in sha512', async () => {
    const image = await pushImage(base, 'sha/app', 'v1');
    const digest512 = sha512(image.bytes);
    const put = await call(base, `/v2/sha/app/manifests/${digest512}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: image.bytes,
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest512);
    const head = await call(base, `/v2/sha/app/manifests/${digest512}`, { method: 'HEAD' });
    expect(head.headers.get('docker-content-digest')).toBe(digest512);
  });

  it('answers a PUT by tag with the digest Location (a tag may move; the digest names these bytes)', async () => {
    const image = await pushImage(base, 'loc/app', 'v1');
    const put = await call(base, '/v2/loc/app/manifests/v2', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: image.bytes,
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe(`/v2/loc/app/manifests/${image.digest}`);
    expect(put.headers.get('docker-content-digest')).toBe(image.digest);
  });
});

describe('blobs across repositories', () => {
  it('keeps visibility per repository: a delete in one leaves the other serving', async () => {
    const digest = await pushBlob(base, 'vis/one', 'shared content');
    await pushBlob(base, 'vis/two', 'shared content');
    expect((await call(base, `/v2/vis/three/blobs/${digest}`)).status).toBe(404);
    expect((await call(base, `/v2/vis/one/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await call(base, `/v2/vis/one/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    expect((await call(base, `/v2/vis/two/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
    expect((await call(base, `/v2/vis/one/blobs/${digest}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('mounts from another repository with 201 and the exact blob Location', async () => {
    const digest = await pushBlob(base, 'mount/src', 'mount me');
    const mount = await call(base, `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`, { method: 'POST' });
    expect(mount.status).toBe(201);
    expect(mount.headers.get('location')).toBe(`/v2/mount/dst/blobs/${digest}`);
    expect(mount.headers.get('docker-content-digest')).toBe(digest);
    expect(await (await call(base, `/v2/mount/dst/blobs/${digest}`)).text()).toBe('mount me');
  });

  it('falls back to an upload session when the blob is not in from, and mounts without from when it exists anywhere', async () => {
    const digest = await pushBlob(base, 'mount/elsewhere', 'anywhere');
    const miss = await call(base, `/v2/mount/dst2/blobs/uploads/?mount=${digest}&from=mount/nothing`, {
      method: 'POST',
    });
    expect(miss.status).toBe(202);
    expect(miss.headers.get('location')).toMatch(/^\/v2\/mount\/dst2\/blobs\/uploads\/[0-9a-f-]{36}$/);
    const anonymous = await call(base, `/v2/mount/dst3/blobs/uploads/?mount=${digest}`, { method: 'POST' });
    expect(anonymous.status).toBe(201);
    const unknown = await call(base, `/v2/mount/dst3/blobs/uploads/?mount=${sha256('no such blob')}`, {
      method: 'POST',
    });
    expect(unknown.status).toBe(202);
  });

  it('refuses a second writer on the same upload while the first is still sending', async () => {
    const post = await call(base, '/v2/busy/app/blobs/uploads/', { method: 'POST' });
    const location = post.headers.get('location') ?? '';
    const { request } = await import('node:http');
    const slow = request(`${base}${location}`, { method: 'PATCH', headers: { 'Content-Length': '10' } });
    slow.on('error', () => undefined);
    slow.write('12345');
    await new Promise((r) => setTimeout(r, 200));
    const second = await call(base, location, { method: 'PATCH', body: 'abc' });
    expect(second.status).toBe(409);
    slow.end('67890');
    await new Promise((r) => slow.on('response', r));
    const status = await call(base, location);
    expect(status.headers.get('range')).toBe('0-9');
  });
});
