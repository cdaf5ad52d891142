/**
 * @module test/support/push-image
 * Pushes a generated TestImage to any registry over plain HTTP (monolithic
 * blob pushes, then manifests, then the index), the way a client would.
 */
import { request } from 'undici';
import type { ManifestBlob, TestImage } from './make-image.js';

const timeoutMs = 30_000;

type Headers = Record<string, string>;

async function put(
  url: string,
  init: { method: 'POST' | 'PUT'; body: Buffer; contentType: string; headers?: Headers },
): Promise<void> {
  const response = await request(url, {
    method: init.method,
    body: init.body,
    headers: { ...init.headers, 'content-type': init.contentType, 'content-length': String(init.body.length) },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`${init.method} ${url}: ${response.statusCode} ${text}`);
}

async function putManifest(
  base: string,
  name: string,
  reference: string,
  manifest: ManifestBlob,
  headers: Headers,
): Promise<void> {
  await put(`${base}/v2/${name}/manifests/${reference}`, {
    method: 'PUT',
    body: manifest.bytes,
    contentType: manifest.mediaType,
    headers,
  });
}

/**
 * Monolithic blob push: POST with ?digest= and the body; a registry that does
 * not take single-POST uploads (distribution) answers 202 and gets a PUT.
 */
async function pushBlob(base: string, name: string, digest: string, bytes: Buffer, headers: Headers): Promise<void> {
  const response = await request(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes,
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  if (response.statusCode === 201) return;
  const location = response.headers.location;
  if (response.statusCode !== 202 || typeof location !== 'string') {
    throw new Error(`POST blob to ${name}: ${response.statusCode} ${text}`);
  }
  const target = new URL(location, base);
  target.searchParams.set('digest', digest);
  await put(target.toString(), { method: 'PUT', body: bytes, contentType: 'application/octet-stream', headers });
}

/** Pushes every blob, every platform manifest by digest, then the root under `tag`; `headers` may carry Authorization. */
export async function pushTestImage(
  base: string,
  name: string,
  tag: string,
  image: TestImage,
  headers: Headers = {},
): Promise<void> {
  for (const [digest, bytes] of image.blobs) await pushBlob(base, name, digest, bytes, headers);
  for (const platform of image.images) {
    await putManifest(base, name, platform.manifest.digest, platform.manifest, headers);
  }
  await putManifest(base, name, tag, image.root, headers);
}
