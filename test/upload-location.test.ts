/**
 * An upload Location is the registry's answer, so it is data (issue 8): `wharf copy` and `blob put`
 * send their bytes where it points, but the registry's credentials stay with the registry's origin.
 * A Location on another origin (here the same address, another port) gets the blob without them.
 * Round 5 of the hand-planted audit (docs/mutation-testing.md).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { putBlob, startUpload } from '../src/upstream/registry-writes.js';
import {
  basicCredentials,
  sendBasicChallenge,
  sendBytes,
  sha256,
  startScriptedRegistry,
  type ScriptedRegistry,
} from './support/scripted-registry.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(script: Parameters<typeof startScriptedRegistry>[0]): Promise<ScriptedRegistry> {
  const server = await startScriptedRegistry(script);
  cleanups.push(() => server.close());
  return server;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

describe('upload Locations', () => {
  it("sends the blob to another origin's Location without the registry's credentials", async () => {
    const blob = Buffer.from('a layer pushed through a storage front');
    const digest = sha256(blob) as Digest;
    const storage = await serve((_req, res) => sendBytes(res, '', {}, 201));
    const registry = await serve((req, res, ctx) => {
      if (basicCredentials(req) !== 'user:secret') return sendBasicChallenge(res);
      if (ctx.request.method === 'POST' && ctx.request.path === '/v2/a/b/blobs/uploads/') {
        return sendBytes(res, '', { Location: `${storage.url}/upload/1?state=opaque` }, 202);
      }
      sendBytes(res, '', {}, 404);
    });
    const dir = await mkdtemp(join(tmpdir(), 'wharf-upload-location-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const auth = Buffer.from('user:secret').toString('base64');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }));
    const client = new RegistryClient({ host: registry.host, url: registry.url, env: { DOCKER_CONFIG: dir } });
    cleanups.push(() => client.close());

    const started = await startUpload(client, 'a/b');
    if (started.mounted) throw new Error('expected an upload session');
    await putBlob(client, 'a/b', started.session, digest, blob.length, once(blob));

    expect(storage.requests.map((r) => [r.method, r.url, r.headers.authorization, r.body.toString()])).toEqual([
      ['PUT', `/upload/1?state=opaque&digest=${encodeURIComponent(digest)}`, undefined, blob.toString()],
    ]);
    // The registry itself got them (after its challenge).
    expect(registry.requests.map((r) => r.headers.authorization)).toEqual([undefined, `Basic ${auth}`]);
  });
});
