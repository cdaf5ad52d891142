/**
 * An imported tag under a mirrored name is the operator's word, like a pushed one (ADR 0005: imported
 * tags carry source `imported`; a fetch never replaces them): it is served as imported and never
 * revalidated, however old, even when the upstream holds another image under that tag. Round 8b
 * planted "only pushed tags skip revalidation"; the tests had the pushed case only. Real parts: a
 * LocalStore's import batch, wharf in process on that data directory, a scripted upstream.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { sha256 } from './support/http.js';
import { startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const host = 'imported.example.test';
const name = `${host}/team/imp` as RepoName;
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';

function manifestWith(config: Buffer): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [],
    }),
  );
}

describe('an imported tag under a mirrored name', () => {
  let work: string;
  let upstream: ScriptedRegistry;
  let wharf: WharfHandle;
  const importedConfig = Buffer.from('{"architecture":"amd64","os":"linux","seed":"imported"}');
  const imported = manifestWith(importedConfig);
  const upstreams = manifestWith(Buffer.from('{"architecture":"amd64","os":"linux","seed":"upstream"}'));

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-imported-tag-'));
    const dataDir = join(work, 'data');
    const store = await LocalStore.open(dataDir);
    try {
      const batch = store.startImport();
      await batch.writeBlob({ digest: sha256(importedConfig) as Digest, size: importedConfig.length }, [
        importedConfig,
      ]);
      const digest = sha256(imported) as Digest;
      await batch.writeManifest(name, { mediaType: ociManifest, digest, size: imported.length, bytes: imported });
      await batch.tag(name, 'v1' as Tag, digest);
      await batch.commit();
    } finally {
      store.close();
    }
    upstream = await startScriptedRegistry({
      '/v2/team/imp/manifests/v1': (req, res) => {
        res.writeHead(200, {
          'Content-Type': ociManifest,
          'Content-Length': String(upstreams.length),
          'Docker-Content-Digest': sha256(upstreams),
        });
        res.end(req.method === 'HEAD' ? undefined : upstreams);
      },
    });
    // tagTtlMs 0: a fetched tag would be revalidated on every pull.
    wharf = await startWharf({
      dataDir,
      upstreams: [{ host, url: upstream.url, public: true, prefetch: false, tagTtlMs: 0 }],
    });
  });

  afterAll(async () => {
    await wharf?.close();
    await upstream?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('is served as imported and the upstream is never asked about it', async () => {
    for (let pull = 0; pull < 2; pull++) {
      const response = await fetch(`${wharf.url}/v2/${name}/manifests/v1`, { headers: { Accept: ociManifest } });
      expect(response.status).toBe(200);
      expect(response.headers.get('docker-content-digest')).toBe(sha256(imported));
      expect(Buffer.from(await response.arrayBuffer()).equals(imported)).toBe(true);
    }
    expect(upstream.requestsTo('/v2/team/imp/manifests/v1')).toEqual([]);
  });

  // Round 12c: a mirror that skipped the store for a pull by digest went to the upstream, which has
  // no such manifest: the imported image answered 404 by digest (containerd pulls by digest).
  it('is served from the store by digest too, and the upstream is never asked about it', async () => {
    const digest = sha256(imported);
    for (const method of ['HEAD', 'GET']) {
      const response = await fetch(`${wharf.url}/v2/${name}/manifests/${digest}`, {
        method,
        headers: { Accept: ociManifest },
      });
      expect(response.status, method).toBe(200);
      expect(response.headers.get('docker-content-digest')).toBe(digest);
      const body = Buffer.from(await response.arrayBuffer());
      if (method === 'GET') expect(body.equals(imported)).toBe(true);
    }
    expect(upstream.requestsTo(`/v2/team/imp/manifests/${digest}`)).toEqual([]);
  });
});
