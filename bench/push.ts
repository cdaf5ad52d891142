/**
 * @module bench/push
 * Pushes a BenchImage to a registry: each blob as a streaming monolithic upload (POST for a
 * session, then one PUT ?digest= whose body streams from the generator), then the manifest.
 */
import { Readable } from 'node:stream';
import { request } from 'undici';
import type { BenchImage, BenchIndex, StreamedBlob } from './images.js';

const timeoutMs = 120_000;

async function pushBlob(base: string, name: string, blob: StreamedBlob): Promise<void> {
  const start = await request(`${base}/v2/${name}/blobs/uploads/`, {
    method: 'POST',
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const startText = await start.body.text();
  const location = start.headers.location;
  if (start.statusCode !== 202 || typeof location !== 'string') {
    throw new Error(`POST ${name} blob upload: ${start.statusCode} ${startText}`);
  }
  const target = new URL(location, base);
  target.searchParams.set('digest', blob.digest);
  const put = await request(target, {
    method: 'PUT',
    body: Readable.from(blob.chunks(), { objectMode: false }),
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const putText = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`PUT ${name} blob ${blob.digest}: ${put.statusCode} ${putText}`);
}

export async function pushImage(base: string, image: BenchImage, reference = image.tag): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await pushBlob(base, image.name, blob);
  await putManifest(base, image.name, reference, image.manifest.bytes, 'application/vnd.oci.image.manifest.v1+json');
}

/** Each platform's image by digest, then the index under the tag. */
export async function pushIndex(base: string, index: BenchIndex): Promise<void> {
  for (const { image } of index.platforms) await pushImage(base, image, image.manifest.digest);
  await putManifest(base, index.name, index.tag, index.index.bytes, 'application/vnd.oci.image.index.v1+json');
}

async function putManifest(base: string, name: string, reference: string, bytes: Buffer, type: string): Promise<void> {
  const response = await request(`${base}/v2/${name}/manifests/${reference}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': type },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`PUT ${name} manifest ${reference}: ${response.statusCode} ${text}`);
}
