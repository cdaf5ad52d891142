/**
 * The registry API's HTTP edges that neither conformance suite nor round 8d reached, against a
 * real in-process server (round 9d of the planted-bug audit): the upload session's headers on
 * every answer, a closing PUT that carries the last chunk (chunked, or with a Content-Range),
 * a DELETE of a session that is gone, digest references of another algorithm, the ETag as sent
 * back, `?tag=` values, an index's subject, pagination at n=0 and `last=` alone, the Allow
 * header, HEAD /v2/, and an empty `?ns=`.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, errorCode, pushBlob, pushImage, sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

let wharf: WharfHandle;
let base: string;
beforeAll(async () => {
  wharf = await startWharf();
  base = wharf.url;
});
afterAll(async () => wharf.close());

const open = async (name: string): Promise<Response> => {
  const started = await call(base, `/v2/${name}/blobs/uploads/`, { method: 'POST' });
  expect(started.status).toBe(202);
  return started;
};
const locationOf = (response: Response): string => {
  const location = response.headers.get('location');
  if (location === null) throw new Error('no Location');
  return location;
};
const patch = (location: string, body: string, range?: string): Promise<Response> =>
  call(base, location, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream', ...(range === undefined ? {} : { 'Content-Range': range }) },
    body,
  });

describe('upload session headers', () => {
  it('names the session in Docker-Upload-UUID on the POST, every PATCH and the status, as the Location does', async () => {
    const started = await open('edge9/uuid');
    const location = locationOf(started);
    const id = location.split('/').pop() ?? '';
    expect(location).toBe(`/v2/edge9/uuid/blobs/uploads/${id}`);
    expect(started.headers.get('docker-upload-uuid')).toBe(id);
    expect(started.headers.get('range')).toBe('0-0');
    const chunk = await patch(location, 'hello', '0-4');
    expect(chunk.status).toBe(202);
    expect(chunk.headers.get('docker-upload-uuid')).toBe(id);
    expect(chunk.headers.get('location')).toBe(location);
    expect(chunk.headers.get('range')).toBe('0-4');
    const status = await call(base, location);
    expect(status.status).toBe(204);
    expect(status.headers.get('docker-upload-uuid')).toBe(id);
    expect(status.headers.get('range')).toBe('0-4');
  });
});

describe('the closing PUT', () => {
  it('takes the last chunk sent chunked (no Content-Length) in the PUT itself', async () => {
    const location = locationOf(await open('edge9/close'));
    expect((await patch(location, 'abc', '0-2')).status).toBe(202);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('def'));
        controller.close();
      },
    });
    const put = await call(base, `${location}?digest=${sha256('abcdef')}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body,
      duplex: 'half',
    });
    expect(put.status).toBe(201);
    expect(await (await call(base, `/v2/edge9/close/blobs/${sha256('abcdef')}`)).text()).toBe('abcdef');
  });

  it("refuses a closing PUT whose Content-Range does not start at the session's end, 416 with the Range held", async () => {
    const location = locationOf(await open('edge9/close'));
    expect((await patch(location, 'abc', '0-2')).status).toBe(202);
    const again = await call(base, `${location}?digest=${sha256('abcabc')}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-2' },
      body: 'abc',
    });
    expect(again.status).toBe(416);
    expect(again.headers.get('range')).toBe('0-2');
    const put = await call(base, `${location}?digest=${sha256('abcdef')}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '3-5' },
      body: 'def',
    });
    expect(put.status).toBe(201);
    expect(await (await call(base, `/v2/edge9/close/blobs/${sha256('abcdef')}`)).text()).toBe('abcdef');
  });
});

describe('cancelling a session', () => {
  it('answers 204 once, then 404 BLOB_UPLOAD_UNKNOWN to a second DELETE and to an id never given', async () => {
    const location = locationOf(await open('edge9/cancel'));
    expect((await patch(location, 'abc')).status).toBe(202);
    expect((await call(base, location, { method: 'DELETE' })).status).toBe(204);
    const status = await call(base, location);
    expect(status.status).toBe(404);
    expect(await errorCode(status)).toBe('BLOB_UPLOAD_UNKNOWN');
    const second = await call(base, location, { method: 'DELETE' });
    expect(second.status).toBe(404);
    expect(await errorCode(second)).toBe('BLOB_UPLOAD_UNKNOWN');
    const never = await call(base, '/v2/edge9/cancel/blobs/uploads/no-such-session', { method: 'DELETE' });
    expect(never.status).toBe(404);
    expect(await errorCode(never)).toBe('BLOB_UPLOAD_UNKNOWN');
  });
});

describe('the digest algorithm of a session', () => {
  it('refuses an algorithm it cannot hash with DIGEST_INVALID, and opens a sha512 session', async () => {
    const md5 = await call(base, '/v2/edge9/algo/blobs/uploads/?digest-algorithm=md5', { method: 'POST' });
    expect(md5.status).toBe(400);
    expect(await errorCode(md5)).toBe('DIGEST_INVALID');
    expect(md5.headers.has('location')).toBe(false);
    const sha512 = await call(base, '/v2/edge9/algo/blobs/uploads/?digest-algorithm=sha512', { method: 'POST' });
    expect(sha512.status).toBe(202);
  });
});

describe('manifest references', () => {
  it('answers DIGEST_INVALID, not TAG_INVALID, to a PUT by a malformed digest of any algorithm', async () => {
    const image = await pushImage(base, 'edge9/refs', 'v1', 'refs');
    for (const reference of ['sha512:abc', 'sha256:abc', 'blake3:abc']) {
      const response = await call(base, `/v2/edge9/refs/manifests/${reference}`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body: image.bytes,
      });
      expect(response.status, reference).toBe(400);
      expect(await errorCode(response), reference).toBe('DIGEST_INVALID');
    }
  });

  it('refuses an invalid ?tag= on a PUT by digest with TAG_INVALID, and keeps neither manifest nor tag', async () => {
    const other = await pushImage(base, 'edge9/tags', 'base', 'tags-base');
    const manifest = JSON.parse(other.bytes.toString('utf8')) as Record<string, unknown>;
    const bytes = Buffer.from(JSON.stringify({ ...manifest, annotations: { round: '9d' } }));
    const digest = sha256(bytes);
    const response = await call(base, `/v2/edge9/tags/manifests/${digest}?tag=ok&tag=-bad`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: bytes,
    });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe('TAG_INVALID');
    expect((await call(base, `/v2/edge9/tags/manifests/${digest}`)).status).toBe(404);
    const tags = (await (await call(base, '/v2/edge9/tags/tags/list')).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['base']);
  });

  it('matches If-None-Match against the ETag exactly as it sent it', async () => {
    const image = await pushImage(base, 'edge9/etag', 'v1', 'etag');
    const first = await call(base, '/v2/edge9/etag/manifests/v1');
    const etag = first.headers.get('etag');
    expect(etag).toBe(`"${image.digest}"`);
    const again = await call(base, '/v2/edge9/etag/manifests/v1', { headers: { 'If-None-Match': etag ?? '' } });
    expect(again.status).toBe(304);
  });
});

describe('an index with a subject', () => {
  it('answers OCI-Subject and lists the index among the subject’s referrers', async () => {
    const subject = await pushImage(base, 'edge9/subject', 'v1', 'subject');
    const child = await pushImage(base, 'edge9/subject', 'child', 'child');
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        artifactType: 'application/example.index',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child.digest, size: child.bytes.length },
        ],
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: subject.digest,
          size: subject.bytes.length,
        },
      }),
    );
    const put = await call(base, `/v2/edge9/subject/manifests/${sha256(index)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
      body: index,
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);
    const referrers = (await (await call(base, `/v2/edge9/subject/referrers/${subject.digest}`)).json()) as {
      manifests: { digest: string; artifactType?: string }[];
    };
    expect(referrers.manifests.map((m) => [m.digest, m.artifactType])).toEqual([
      [sha256(index), 'application/example.index'],
    ]);
  });
});

describe('pagination edges', () => {
  beforeAll(async () => {
    for (const tag of ['a', 'b', 'c']) await pushImage(base, 'edge9/page', tag, 'page');
  });
  const tagsOf = async (query: string): Promise<{ status: number; tags?: string[]; link: string | null }> => {
    const response = await call(base, `/v2/edge9/page/tags/list${query}`);
    const body = (await response.json()) as { tags?: string[] };
    return { status: response.status, tags: body.tags, link: response.headers.get('link') };
  };

  it('answers n=0 of an unknown repository 404 NAME_UNKNOWN, as without n', async () => {
    const response = await call(base, '/v2/edge9/never/tags/list?n=0');
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('NAME_UNKNOWN');
  });

  it('reads last= without n: the tags after it, and none after the last one', async () => {
    expect(await tagsOf('?last=a')).toEqual({ status: 200, tags: ['b', 'c'], link: null });
    expect(await tagsOf('?last=c')).toEqual({ status: 200, tags: [], link: null });
    expect(await tagsOf('?n=5&last=zzz')).toEqual({ status: 200, tags: [], link: null });
  });

  it('refuses an empty n with PAGINATION_NUMBER_INVALID', async () => {
    for (const n of ['', '-1', '1.5']) {
      const response = await call(base, `/v2/edge9/page/tags/list?n=${n}`);
      expect(response.status, `n=${n}`).toBe(400);
      expect(await errorCode(response), `n=${n}`).toBe('PAGINATION_NUMBER_INVALID');
    }
  });
});

describe('methods', () => {
  it('answers 405 on a manifest with every method the endpoint takes in Allow', async () => {
    const response = await call(base, '/v2/edge9/methods/manifests/v1', { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE');
    const upload = await call(base, '/v2/edge9/methods/blobs/uploads/', { method: 'PUT' });
    expect(upload.status).toBe(405);
    expect(upload.headers.get('allow')).toBe('POST');
    const blob = await call(base, `/v2/edge9/methods/blobs/${sha256('x')}`, { method: 'PUT' });
    expect(blob.status).toBe(405);
    expect(blob.headers.get('allow')).toBe('GET, HEAD, DELETE');
  });

  it('answers HEAD /v2/ 200 with the API version header and no body', async () => {
    const response = await call(base, '/v2/', { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await response.text()).toBe('');
  });
});

describe('a refusal before the body was read', () => {
  it('closes the keep-alive connection, so the unread body never reaches the next request', async () => {
    const answer = await withDeadline(
      new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const url = new URL('/v2/edge9/close/blobs/uploads/no-such-session', base);
        const req = request(
          url,
          { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '1048576' } },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, connection: res.headers.connection });
            req.destroy();
          },
        );
        req.on('error', reject);
        // Only the first bytes of the announced body: the answer comes before the rest.
        req.write(Buffer.alloc(1024));
      }),
      20_000,
      'the refusal of a PATCH to an unknown session',
    );
    expect(answer.status).toBe(404);
    expect(answer.connection).toBe('close');
  });
});

describe('an empty ?ns=', () => {
  it('is no namespace: the local repository is read, with no OCI-Namespace header', async () => {
    const digest = await pushBlob(base, 'edge9/ns', 'ns bytes');
    const response = await call(base, `/v2/edge9/ns/blobs/${digest}?ns=`);
    expect(response.status).toBe(200);
    expect(response.headers.has('oci-namespace')).toBe(false);
    expect(await response.text()).toBe('ns bytes');
  });
});

describe('an empty ?artifactType=', () => {
  it('is no filter: every referrer is listed, and OCI-Filters-Applied names none', async () => {
    const subject = await pushImage(base, 'edge9/filter', 'v1', 'filter');
    const referrer = await pushImage(base, 'edge9/filter', 'sig', 'filter-sig', {
      artifactType: 'application/example.sig',
      subject: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: subject.digest,
        size: subject.bytes.length,
      },
    });
    const response = await call(base, `/v2/edge9/filter/referrers/${subject.digest}?artifactType=`);
    expect(response.status).toBe(200);
    expect(response.headers.has('oci-filters-applied')).toBe(false);
    const index = (await response.json()) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([referrer.digest]);
  });
});
