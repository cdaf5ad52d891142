/**
 * @module bench/pull-client
 * A minimal image pull over HTTP, as a client does it: the manifest by tag, then the config and
 * the layers (three at a time, docker's default), each body hashed and checked, then dropped.
 */
import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { manifestAccept } from './images.js';

interface Descriptor {
  digest: string;
  size: number;
}

interface ImageManifest {
  config: Descriptor;
  layers: Descriptor[];
}

const timeoutMs = 300_000;

async function fetchBlob(base: string, name: string, d: Descriptor, dispatcher: Dispatcher): Promise<number> {
  const response = await request(`${base}/v2/${name}/blobs/${d.digest}`, {
    dispatcher,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of response.body) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  const digest = `sha256:${hash.digest('hex')}`;
  if (response.statusCode !== 200 || size !== d.size || digest !== d.digest) {
    throw new Error(`pull ${name} blob ${d.digest}: status ${response.statusCode}, ${size} bytes, got ${digest}`);
  }
  return size;
}

/** Pulls `name:tag` from `base`; resolves with the bytes received. */
export async function pullImage(base: string, name: string, tag: string, dispatcher: Dispatcher): Promise<number> {
  const response = await request(`${base}/v2/${name}/manifests/${tag}`, {
    dispatcher,
    headers: { accept: manifestAccept },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`pull ${name}:${tag} manifest: ${response.statusCode} ${text}`);
  const manifest = JSON.parse(text) as ImageManifest;
  const queue = [manifest.config, ...manifest.layers];
  let bytes = text.length;
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      bytes += await fetchBlob(base, name, next, dispatcher);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return bytes;
}
