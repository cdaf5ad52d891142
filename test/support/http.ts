/**
 * @module test/support/http
 * Small helpers over fetch for the registry tests: every call has a deadline.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';

export const timeoutMs = 30_000;

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function sha512(data: Uint8Array | string): string {
  return `sha512:${createHash('sha512').update(data).digest('hex')}`;
}

export async function call(base: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(new URL(path, base), { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs), ...init });
}

/** The first error code of an OCI error body. */
export async function errorCode(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { errors?: { code?: string }[] };
  return body.errors?.[0]?.code;
}

/** Monolithic push (POST ?digest=) of a blob; returns its digest. */
export async function pushBlob(
  base: string,
  name: string,
  data: Uint8Array | string,
  headers: Record<string, string> = {},
): Promise<string> {
  const digest = sha256(data);
  const response = await call(base, `/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: data,
    headers,
  });
  if (response.status !== 201) throw new Error(`push blob to ${name}: ${response.status} ${await response.text()}`);
  return digest;
}

export interface PushedImage {
  digest: string;
  bytes: Buffer;
  config: string;
  layers: string[];
}

/** Pushes a config, one layer and an OCI image manifest under reference; `headers` may carry Authorization. */
export async function pushImage(
  base: string,
  name: string,
  reference: string,
  seed = 'x',
  extra: object = {},
  headers: Record<string, string> = {},
): Promise<PushedImage> {
  const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
  const layerBytes = `layer-${seed}`;
  const config = await pushBlob(base, name, configBytes, headers);
  const layer = await pushBlob(base, name, layerBytes, headers);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configBytes.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerBytes.length }],
    ...extra,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const response = await call(base, `/v2/${name}/manifests/${reference}`, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: bytes,
  });
  if (response.status !== 201) throw new Error(`push manifest: ${response.status} ${await response.text()}`);
  return { digest: sha256(bytes), bytes, config, layers: [layer] };
}

/**
 * Sends a request's headers and never its body, and resolves with the answer: what a server says from
 * the declared Content-Length alone (callers put a deadline on it).
 */
export function answerToHeadersOnly(
  url: string,
  method: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}
