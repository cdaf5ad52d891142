/**
 * Round 10a of the planted-bug audit (docs/mutation-testing.md): `wharf du` groups repositories by
 * the upstream they mirror. A mirrored name carries its upstream's host as its first component with
 * the port's ':' written '-' (`registry.example.test-5000/team/app`); an upstream configured with a
 * port (as every self-hosted registry is) must still own its repositories, not be listed as local.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { randomBytesFor, sha256Digest } from './support/make-image.js';
import { runWharf } from './support/spawn-wharf.js';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const name = 'registry.example.test-5000/team/app' as RepoName;

describe('wharf du with an upstream that has a port', () => {
  let work: string;
  let dataDir: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-du-port-'));
    dataDir = join(work, 'data');
    const store = await LocalStore.open(dataDir);
    try {
      const config = randomBytesFor('du-port/config', 100);
      const layer = randomBytesFor('du-port/layer', 3000);
      const blob = (bytes: Buffer): { digest: Digest; size: number } => ({
        digest: sha256Digest(bytes) as Digest,
        size: bytes.length,
      });
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: ociManifest,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(config) },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(layer) }],
        }),
      );
      const digest = sha256Digest(bytes) as Digest;
      const batch = store.startImport({ source: 'preloaded' });
      await batch.writeBlob(blob(config), [config]);
      await batch.writeBlob(blob(layer), [layer]);
      await batch.writeManifest(name, { mediaType: ociManifest, digest, size: bytes.length, bytes });
      await batch.tag(name, 'v1' as Tag, digest);
      await batch.commit();
    } finally {
      store.close();
    }
  });

  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('lists the repository under that upstream, not as local', async () => {
    const du = await runWharf(['du', '--json', '--data', dataDir], {
      env: { WHARF_UPSTREAMS: 'registry.example.test:5000=http://127.0.0.1:9' },
      timeoutMs: 60_000,
    });
    expect(du.stderr).toBe('');
    expect(du.code).toBe(0);
    const stats = JSON.parse(du.stdout) as {
      upstreams: { upstream: string; repositories: number }[];
      repositories: { name: string; upstream?: string }[];
    };
    expect(stats.upstreams.map(({ upstream, repositories }) => ({ upstream, repositories }))).toEqual([
      { upstream: 'registry.example.test-5000', repositories: 1 },
    ]);
    expect(stats.repositories.map(({ name: n, upstream }) => ({ name: n, upstream }))).toEqual([
      { name, upstream: 'registry.example.test-5000' },
    ]);
  });
});
