/**
 * Bad input gets the spec's error and loses nothing: each refusal is an OCI
 * error body with the spec's status, and nothing half-written becomes visible.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerToHeadersOnly, call, errorCode, pushBlob, pushImage, sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

let wharf: WharfHandle;
let base: string;
beforeAll(async () => {
  wharf = await startWharf();
  base = wharf.url;
});
afterAll(async () => wharf.close());

async function expectError(response: Response, status: number, code: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/json');
  expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  expect(await errorCode(response)).toBe(code);
}

describe('invalid names', () => {
  it.each(['UPPER/case', 'a//b', '-a', 'a/-b', 'a%2Fb', 'a.-b', 'a..b'])(
    'refuses %s with NAME_INVALID',
    async (name) => {
      await expectError(await call(base, `/v2/${name}/tags/list`), 400, 'NAME_INVALID');
    },
  );

  it('refuses path traversal in the name without touching the filesystem', async () => {
    await expectError(await call(base, `/v2/..%2F..%2Fetc/blobs/uploads/`, { method: 'POST' }), 400, 'NAME_INVALID');
    // fetch would normalise ../ itself: send the raw path with node:http semantics through a Request-less URL.
    const raw = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = raw.request(
        `${base}/v2/a/../../../etc/passwd/tags/list`,
        { method: 'GET', path: '/v2/a/../../etc/tags/list' },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(400);
  });

  it('refuses a name over 255 characters', async () => {
    await expectError(await call(base, `/v2/${'a'.repeat(256)}/tags/list`), 400, 'NAME_INVALID');
  });
});

describe('invalid digests', () => {
  it('answers DIGEST_INVALID for a malformed blob digest', async () => {
    await expectError(await call(base, '/v2/errs/blobs/sha256:xyz'), 400, 'DIGEST_INVALID');
  });
  it('answers DIGEST_INVALID for an unsupported algorithm on upload', async () => {
    const response = await call(base, `/v2/errs/blobs/uploads/?digest=md5:${'a'.repeat(32)}`, {
      method: 'POST',
      body: 'x',
    });
    await expectError(response, 400, 'DIGEST_INVALID');
  });
  it('refuses a body whose digest does not match, and keeps nothing', async () => {
    const claimed = sha256('something else');
    const response = await call(base, `/v2/errs/blobs/uploads/?digest=${claimed}`, {
      method: 'POST',
      body: 'the real body',
    });
    await expectError(response, 400, 'DIGEST_INVALID');
    expect((await call(base, `/v2/errs/blobs/${claimed}`)).status).toBe(404);
    expect((await call(base, `/v2/errs/blobs/${sha256('the real body')}`)).status).toBe(404);
    expect((await readdir(join(wharf.dataDir, 'tmp'))).filter((f) => f.endsWith('.part'))).toEqual([]);
  });
  it('refuses a chunked upload closed with the wrong digest and drops the session', async () => {
    const post = await call(base, '/v2/errs/blobs/uploads/', { method: 'POST' });
    const location = post.headers.get('location') ?? '';
    await call(base, location, {
      method: 'PATCH',
      body: 'abc',
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    const put = await call(base, `${location}?digest=${sha256('abd')}`, { method: 'PUT' });
    await expectError(put, 400, 'DIGEST_INVALID');
    await expectError(await call(base, location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
  it('refuses PUT without a digest', async () => {
    const post = await call(base, '/v2/errs/blobs/uploads/', { method: 'POST' });
    await expectError(await call(base, post.headers.get('location') ?? '', { method: 'PUT' }), 400, 'DIGEST_INVALID');
  });
});

describe('sizes and ranges', () => {
  it('answers SIZE_INVALID when Content-Range and the body disagree, and keeps the upload as it was', async () => {
    const post = await call(base, '/v2/errs/blobs/uploads/', { method: 'POST' });
    const location = post.headers.get('location') ?? '';
    const patch = await call(base, location, { method: 'PATCH', body: 'abcdef', headers: { 'Content-Range': '0-2' } });
    await expectError(patch, 416, 'SIZE_INVALID');
    const status = await call(base, location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
    const ok = await call(base, location, { method: 'PATCH', body: 'abc', headers: { 'Content-Range': '0-2' } });
    expect(ok.status).toBe(202);
    expect((await call(base, `${location}?digest=${sha256('abc')}`, { method: 'PUT' })).status).toBe(201);
  });
  it('answers BLOB_UPLOAD_INVALID for a malformed Content-Range', async () => {
    const post = await call(base, '/v2/errs/blobs/uploads/', { method: 'POST' });
    const patch = await call(base, post.headers.get('location') ?? '', {
      method: 'PATCH',
      body: 'x',
      headers: { 'Content-Range': 'zzz' },
    });
    await expectError(patch, 400, 'BLOB_UPLOAD_INVALID');
  });
  it('answers 416 RANGE_INVALID with Content-Range */size for an unsatisfiable Range', async () => {
    const digest = await pushBlob(base, 'errs', 'twelve bytes');
    const response = await call(base, `/v2/errs/blobs/${digest}`, { headers: { Range: 'bytes=100-200' } });
    expect(response.headers.get('content-range')).toBe('bytes */12');
    await expectError(response, 416, 'RANGE_INVALID');
  });
  it('answers PAGINATION_NUMBER_INVALID for a bad n', async () => {
    await pushImage(base, 'errs', 'v1');
    await expectError(await call(base, '/v2/errs/tags/list?n=-1'), 400, 'PAGINATION_NUMBER_INVALID');
    await expectError(await call(base, '/v2/_catalog?n=abc'), 400, 'PAGINATION_NUMBER_INVALID');
  });
});

describe('manifests', () => {
  const put = (
    name: string,
    reference: string,
    body: string | Buffer,
    type = 'application/vnd.oci.image.manifest.v1+json',
  ) => call(base, `/v2/${name}/manifests/${reference}`, { method: 'PUT', headers: { 'Content-Type': type }, body });

  it('refuses malformed JSON with MANIFEST_INVALID', async () => {
    await expectError(await put('errs', 'bad', '{"schemaVersion":'), 400, 'MANIFEST_INVALID');
  });
  it('refuses a manifest over 4 MiB with 413', async () => {
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    await expectError(await put('errs', 'huge', huge), 413, 'MANIFEST_INVALID');
  });
  // Round 5 of the planted-bug audit: the bound at its edge, and on a body sent without a length.
  it('takes a manifest of exactly 4 MiB, and refuses a chunked one over 4 MiB with 413', async () => {
    const config = await pushBlob(base, 'errs', '{}');
    const head = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [],
    });
    const exact = Buffer.concat([Buffer.from(head), Buffer.alloc(4 * 1024 * 1024 - head.length, 0x20)]);
    const created = await put('errs', 'four-mib', exact);
    expect(created.status).toBe(201);
    expect(created.headers.get('docker-content-digest')).toBe(sha256(exact));
    const over = Buffer.concat([exact, Buffer.from(' ')]);
    const chunked = await call(base, '/v2/errs/manifests/chunked-huge', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(over);
          controller.close();
        },
      }),
      duplex: 'half',
    });
    await expectError(chunked, 413, 'MANIFEST_INVALID');
    expect((await call(base, '/v2/errs/manifests/chunked-huge', { method: 'HEAD' })).status).toBe(404);
  });
  it('answers 413 to a chunked manifest as soon as it passes 4 MiB, without waiting for its end', async () => {
    const { request } = await import('node:http');
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${base}/v2/errs/manifests/endless`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Transfer-Encoding': 'chunked' },
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
          req.destroy();
        });
      });
      req.on('error', reject);
      // One byte over the bound, and the body never ends: only a check while reading can answer.
      req.write(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
    });
    const { status, body } = await withDeadline(answer, 20_000, 'the 413 answer');
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({
      errors: [{ code: 'MANIFEST_INVALID', message: `manifest exceeds ${4 * 1024 * 1024} bytes` }],
    });
  });
  // Round 12a: the declared length is checked before any body byte is read.
  it('answers 413 to a manifest whose Content-Length is over 4 MiB before the body is sent', async () => {
    // Headers only: the body never comes, so only the declared length can answer.
    const answer = answerToHeadersOnly(`${base}/v2/errs/manifests/declared-huge`, 'PUT', {
      'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
      'Content-Length': String(4 * 1024 * 1024 + 1),
    });
    const { status, body } = await withDeadline(answer, 20_000, 'the 413 answer');
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({
      errors: [{ code: 'MANIFEST_INVALID', message: `manifest exceeds ${4 * 1024 * 1024} bytes` }],
    });
  });
  it('refuses a manifest whose blobs are not in the repository with MANIFEST_BLOB_UNKNOWN', async () => {
    const missing = sha256('never pushed');
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: missing, size: 12 },
      layers: [],
    });
    await expectError(await put('errs', 'orphan', body), 400, 'MANIFEST_BLOB_UNKNOWN');
    // The blob exists in another repository: still unknown here (visibility is per repository).
    await pushBlob(base, 'elsewhere', 'never pushed');
    await expectError(await put('errs', 'orphan', body), 400, 'MANIFEST_BLOB_UNKNOWN');
  });
  it('refuses a Content-Type that contradicts the body mediaType', async () => {
    const image = await pushImage(base, 'errs', 'typed');
    await expectError(
      await put('errs', 'typed2', image.bytes, 'application/vnd.oci.image.index.v1+json'),
      400,
      'MANIFEST_INVALID',
    );
  });
  it('refuses an invalid tag on PUT with TAG_INVALID, and a bad digest reference with DIGEST_INVALID', async () => {
    const image = await pushImage(base, 'errs', 'ok');
    await expectError(await put('errs', '-bad', image.bytes), 400, 'TAG_INVALID');
    await expectError(await put('errs', 'sha256:baddigeststring', image.bytes), 400, 'DIGEST_INVALID');
    await expectError(await put('errs', sha256('other bytes'), image.bytes), 400, 'DIGEST_INVALID');
  });
  it('answers 404 MANIFEST_UNKNOWN, not 400, for an invalid tag on read', async () => {
    await expectError(await call(base, '/v2/errs/manifests/.INVALID_MANIFEST_NAME'), 404, 'MANIFEST_UNKNOWN');
    expect((await call(base, '/v2/errs/manifests/.INVALID_MANIFEST_NAME', { method: 'HEAD' })).status).toBe(404);
  });
});

describe('methods and endpoints', () => {
  it('answers 405 UNSUPPORTED with Allow for a method an endpoint does not take', async () => {
    const response = await call(base, '/v2/errs/tags/list', { method: 'DELETE' });
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    await expectError(response, 405, 'UNSUPPORTED');
    await expectError(await call(base, '/v2/', { method: 'POST' }), 405, 'UNSUPPORTED');
  });
  it('answers 404 with an OCI body for a path that is no endpoint', async () => {
    await expectError(await call(base, '/v2/errs/nothing/here'), 404, 'UNSUPPORTED');
    await expectError(await call(base, '/favicon.ico'), 404, 'UNSUPPORTED');
  });
  it('answers NAME_UNKNOWN for the tags of an unknown repository', async () => {
    await expectError(await call(base, '/v2/never/pushed/tags/list'), 404, 'NAME_UNKNOWN');
  });
  it('answers BLOB_UPLOAD_UNKNOWN for an upload id that does not exist, or belongs to another repository', async () => {
    await expectError(await call(base, '/v2/errs/blobs/uploads/does-not-exist'), 404, 'BLOB_UPLOAD_UNKNOWN');
    const post = await call(base, '/v2/errs/blobs/uploads/', { method: 'POST' });
    const id = (post.headers.get('location') ?? '').split('/').pop() ?? '';
    await expectError(await call(base, `/v2/other/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(
      await call(base, `/v2/other/blobs/uploads/${id}`, { method: 'DELETE' }),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
  });
});
