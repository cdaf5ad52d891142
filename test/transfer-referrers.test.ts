/**
 * Issue 10: referrers in transfers. `wharf export --referrers` carries the manifests whose subject
 * is an exported manifest (a signature-like artifact here) with their blobs, listed in index.json
 * without a ref.name; `wharf import` puts each under its subject's repository, and the imported
 * store answers the referrers API with it. `wharf preload --referrers` fetches them from a real
 * upstream: CNCF distribution 2.8 has no referrers API (404), so wharf reads the referrers tag
 * schema (`sha256-<hex>`), as clients that push there write it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { makeSignature, pushSignature, signatureArtifactType } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { readTar } from './support/tar-surgery.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeoutMs = 120_000;
const artifactType = signatureArtifactType;

async function referrersIn(data: string, name: string, subject: string): Promise<string[]> {
  const store = LocalStore.openReadOnly(data);
  try {
    return (await store.listReferrers(name as RepoName, subject as Digest)).map((d) => d.digest);
  } finally {
    store.close();
  }
}

describe.sequential('referrers in export, import and preload', () => {
  let work: string;
  let source: WharfHandle;
  let upstream: DistributionHandle;
  let image: TestImage;
  let signature: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-referrers-'));
    image = await makeImage({ seed: testSeed('referrers image'), layers: 1 });
    signature = makeSignature(image.root, 'signed by the test');
    source = await startWharf();
    upstream = await startDistribution();
    for (const base of [source.url, upstream.url]) {
      await pushTestImage(base, 'team/app', 'v1', image);
      // distribution 2.8 has no referrers API: the tag schema's index is what a client pushing there writes.
      await pushSignature(base, 'team/app', image.root, signature, { tagSchema: base === upstream.url });
    }
  }, timeoutMs);

  afterAll(async () => {
    await source?.close();
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it(
    'export --referrers carries the signature; import files it under its subject; without the flag it stays behind',
    async () => {
      const bundle = join(work, 'with.tar');
      const exported = await runWharf(
        ['export', 'team/app:v1', '--referrers', '-o', bundle, '--data', source.dataDir, '--quiet'],
        { timeoutMs: 60_000 },
      );
      expect(exported.stderr).toBe('');
      expect(exported.code).toBe(0);
      const entries = await readTar(bundle);
      const index = JSON.parse(entries.find((e) => e.header.name === 'index.json')?.data.toString() ?? '{}') as {
        manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
      };
      expect(index.manifests.map((m) => [m.digest, m.artifactType, m.annotations])).toEqual([
        [
          image.root.digest,
          undefined,
          { 'org.opencontainers.image.ref.name': 'team/app:v1', 'io.wharf.local-name': 'true' },
        ],
        [signature.root.digest, artifactType, undefined],
      ]);

      const data = join(work, 'imported');
      const imported = await runWharf(['import', bundle, '--data', data, '--quiet'], { timeoutMs: 60_000 });
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      expect(await referrersIn(data, 'team/app', image.root.digest)).toEqual([signature.root.digest]);

      const without = join(work, 'without.tar');
      await runWharf(['export', 'team/app:v1', '-o', without, '--data', source.dataDir, '--quiet'], {
        timeoutMs: 60_000,
      });
      const names = (await readTar(without)).map((e) => e.header.name);
      expect(names).not.toContain(`blobs/sha256/${signature.root.digest.slice('sha256:'.length)}`);
    },
    timeoutMs,
  );

  it(
    'preload --referrers reads the referrers tag schema from distribution 2.8',
    async () => {
      const data = join(work, 'preloaded');
      const preloaded = await runWharf(
        [
          'preload',
          'registry.example.test/team/app:v1',
          '--referrers',
          '--upstream',
          `registry.example.test=${upstream.url}`,
          '--data',
          data,
          '--quiet',
        ],
        { timeoutMs: 60_000 },
      );
      expect(preloaded.stderr).toBe('');
      expect(preloaded.code).toBe(0);
      expect(await referrersIn(data, 'registry.example.test/team/app', image.root.digest)).toEqual([
        signature.root.digest,
      ]);
    },
    timeoutMs,
  );
  // Round 2 of the planted-bug audit (docs/mutation-testing.md): an export that took the referrers
  // of the images it was asked for but not theirs (a countersignature, an SBOM's signature) passed.
  it(
    'export --referrers follows referrers of referrers: a countersignature comes along and imports under its subject',
    async () => {
      const countersignature = makeSignature(signature.root, 'countersigned by the test');
      await pushSignature(source.url, 'team/app', signature.root, countersignature, { tagSchema: false });
      const bundle = join(work, 'chain.tar');
      const exported = await runWharf(
        ['export', 'team/app:v1', '--referrers', '-o', bundle, '--data', source.dataDir, '--quiet'],
        { timeoutMs: 60_000 },
      );
      expect(exported.stderr).toBe('');
      expect(exported.code).toBe(0);
      const data = join(work, 'chain-imported');
      const imported = await runWharf(['import', bundle, '--data', data, '--quiet'], { timeoutMs: 60_000 });
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      expect(await referrersIn(data, 'team/app', image.root.digest)).toEqual([signature.root.digest]);
      expect(await referrersIn(data, 'team/app', signature.root.digest)).toEqual([countersignature.root.digest]);
    },
    timeoutMs,
  );
});
