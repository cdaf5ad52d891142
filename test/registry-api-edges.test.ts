/**
 * The registry API's edges that neither conformance suite reaches, against a real
 * in-process server (round 8d of the planted-bug audit): ranges at the blob's ends and a
 * HEAD with Range, conditional manifest reads (HEAD, weak and listed ETags), a DELETE of
 * a tag that is not there, the upload session after a refused chunk or a wrong digest,
 * the referrers filter header, and the detail of error bodies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, errorCode, pushBlob, pushImage, sha256 } from './support/http.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

let wharf: WharfHandle;
let base: string;
beforeAll(async () => {
  wharf = await startWharf();
  base = wharf.url;
});
afterAll(async () => wharf.close());

const blobHeaderNames = [
  'content-type',
  'content-length',
  'content-range',
  'docker-content-digest',
  'etag',
  'accept-ranges',
];
const headersOf = (r: Response, names: string[]): Record<string, string | null> =>
  Object.fromEntries(names.map((n) => [n, r.headers.get(n)]));

describe('blob ranges at the ends of the blob', () => {
  const data = '0123456789';
  let digest: string;
  beforeAll(async () => {
    digest = await pushBlob(base, 'edge/ranges', data);
  });
  const ranged = async (range: string, method = 'GET'): Promise<Response> =>
    call(base, `/v2/edge/ranges/blobs/${digest}`, { method, headers: { Range: range } });

  it('a suffix longer than the blob is the whole blob, as a 206', async () => {
    const response = await ranged('bytes=-25');
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe('bytes 0-9/10');
    expect(response.headers.get('content-length')).toBe('10');
    expect(await response.text()).toBe(data);
  });

  it('an end past the blob stops at its last byte', async () => {
    const response = await ranged('bytes=5-100');
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe('bytes 5-9/10');
    expect(response.headers.get('content-length')).toBe('5');
    expect(await response.text()).toBe('56789');
  });

  it('one byte is a 206 whose Content-Range names that byte alone', async () => {
    const response = await ranged('bytes=3-3');
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe('bytes 3-3/10');
    expect(await response.text()).toBe('3');
  });

  it('a range starting at the blob size, or a zero-byte suffix, is a 416 RANGE_INVALID with bytes */size', async () => {
    for (const range of ['bytes=10-', 'bytes=10-12', 'bytes=-0']) {
      const response = await ranged(range);
      expect(response.status, range).toBe(416);
      expect(response.headers.get('content-range'), range).toBe('bytes */10');
      expect(await errorCode(response), range).toBe('RANGE_INVALID');
    }
  });

  it('a HEAD with Range answers what the GET answers: 206 and the same headers', async () => {
    const get = await ranged('bytes=2-4');
    expect(await get.text()).toBe('234');
    const head = await ranged('bytes=2-4', 'HEAD');
    expect(head.status).toBe(get.status);
    expect(headersOf(head, blobHeaderNames)).toEqual(headersOf(get, blobHeaderNames));
    expect(head.headers.get('content-range')).toBe('bytes 2-4/10');
    expect(head.headers.get('docker-content-digest')).toBe(digest);
  });
});

describe('conditional manifest reads', () => {
  it('answers If-None-Match on a HEAD with 304 too, with the digest headers', async () => {
    const image = await pushImage(base, 'edge/cond', 'v1', 'head-304');
    const head = await call(base, '/v2/edge/cond/manifests/v1', {
      method: 'HEAD',
      headers: { 'If-None-Match': `"${image.digest}"` },
    });
    expect(head.status).toBe(304);
    expect(head.headers.get('docker-content-digest')).toBe(image.digest);
    expect(head.headers.get('etag')).toBe(`"${image.digest}"`);
    const other = await call(base, '/v2/edge/cond/manifests/v1', {
      method: 'HEAD',
      headers: { 'If-None-Match': `"${sha256('another')}"` },
    });
    expect(other.status).toBe(200);
  });

  it('takes a weak ETag and an ETag anywhere in a list', async () => {
    const image = await pushImage(base, 'edge/cond', 'v2', 'lists');
    const get = (value: string): Promise<Response> =>
      call(base, '/v2/edge/cond/manifests/v2', { headers: { 'If-None-Match': value } });
    expect((await get(`W/"${image.digest}"`)).status).toBe(304);
    expect((await get(`"${sha256('first')}", "${image.digest}"`)).status).toBe(304);
    expect((await get(`"${sha256('first')}", "${sha256('second')}"`)).status).toBe(200);
  });
});

describe('manifest DELETE', () => {
  it('answers 404 MANIFEST_UNKNOWN to a tag that is not there, and keeps the others', async () => {
    const image = await pushImage(base, 'edge/del', 'kept', 'delete');
    const missing = await call(base, '/v2/edge/del/manifests/never-pushed', { method: 'DELETE' });
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe('MANIFEST_UNKNOWN');
    const absentDigest = await call(base, `/v2/edge/del/manifests/${sha256('absent')}`, { method: 'DELETE' });
    expect(absentDigest.status).toBe(404);
    expect((await call(base, '/v2/edge/del/manifests/kept')).headers.get('docker-content-digest')).toBe(image.digest);
  });
});

describe('upload sessions after a refusal', () => {
  const open = async (name: string): Promise<string> => {
    const started = await call(base, `/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    const location = started.headers.get('location');
    if (location === null) throw new Error('no Location');
    return location;
  };
  const patch = (location: string, body: string, range: string): Promise<Response> =>
    call(base, location, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': range },
      body,
    });

  it('takes chunks of one byte each', async () => {
    const location = await open('edge/chunks');
    const first = await patch(location, 'a', '0-0');
    expect(first.status).toBe(202);
    expect(first.headers.get('range')).toBe('0-0');
    const second = await patch(location, 'b', '1-1');
    expect(second.status).toBe(202);
    expect(second.headers.get('range')).toBe('0-1');
    const put = await call(base, `${location}?digest=${sha256('ab')}`, { method: 'PUT' });
    expect(put.status).toBe(201);
  });

  it('answers an out-of-order chunk 416 with the Range held, and the session goes on', async () => {
    const location = await open('edge/chunks');
    expect((await patch(location, 'abc', '0-2')).status).toBe(202);
    const gap = await patch(location, 'xyz', '5-7');
    expect(gap.status).toBe(416);
    expect(gap.headers.get('range')).toBe('0-2');
    const status = await call(base, location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-2');
    expect((await patch(location, 'def', '3-5')).status).toBe(202);
    const put = await call(base, `${location}?digest=${sha256('abcdef')}`, { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(await (await call(base, `/v2/edge/chunks/blobs/${sha256('abcdef')}`)).text()).toBe('abcdef');
  });

  it('forgets a chunk whose Content-Range names more bytes than it has: a retry completes the blob', async () => {
    const location = await open('edge/chunks');
    expect((await patch(location, 'abc', '0-2')).status).toBe(202);
    const short = await patch(location, 'de', '3-5');
    expect(short.status).toBe(416);
    expect(short.headers.get('range')).toBe('0-2');
    expect((await call(base, location)).headers.get('range')).toBe('0-2');
    expect((await patch(location, 'def', '3-5')).status).toBe(202);
    const put = await call(base, `${location}?digest=${sha256('abcdef')}`, { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(await (await call(base, `/v2/edge/chunks/blobs/${sha256('abcdef')}`)).text()).toBe('abcdef');
  });

  it('ends the session on a closing PUT with the wrong digest (distribution cancels it too)', async () => {
    const location = await open('edge/chunks');
    expect((await patch(location, 'abc', '0-2')).status).toBe(202);
    const wrong = await call(base, `${location}?digest=${sha256('not abc')}`, { method: 'PUT' });
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID');
    const status = await call(base, location);
    expect(status.status).toBe(404);
    expect(await errorCode(status)).toBe('BLOB_UPLOAD_UNKNOWN');
    const retry = await call(base, `${location}?digest=${sha256('abc')}`, { method: 'PUT' });
    expect(retry.status).toBe(404);
  });
});

describe('referrers', () => {
  it('names no filter in OCI-Filters-Applied when none was asked for', async () => {
    const image = await pushImage(base, 'edge/refs', 'v1', 'refs');
    const plain = await call(base, `/v2/edge/refs/referrers/${image.digest}`);
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    expect(plain.headers.has('oci-filters-applied')).toBe(false);
    const filtered = await call(base, `/v2/edge/refs/referrers/${image.digest}?artifactType=application%2Fexample`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
  });
});

describe('error bodies', () => {
  it('carry the code, the status and the detail naming what was missing', async () => {
    const digest = sha256('never pushed');
    const blob = await call(base, `/v2/edge/errors/blobs/${digest}`);
    expect(blob.status).toBe(404);
    expect(blob.headers.get('content-type')).toBe('application/json');
    expect(await blob.json()).toEqual({
      errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest } }],
    });
    const session = await call(base, '/v2/edge/errors/blobs/uploads/no-such-session');
    expect(session.status).toBe(404);
    expect(await session.json()).toEqual({
      errors: [
        { code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown to registry', detail: { id: 'no-such-session' } },
      ],
    });
  });
});
