/**
 * @module test/gc.test
 * gc on a real store behind a real wharf (issue 9, "Disk and lifecycle"): a DELETE answered 202
 * used to free no byte; now gc frees exactly what nothing refers to, keeps what is shared, tagged
 * or in use, and `wharf gc --dry-run` says what would go without touching anything.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call } from './support/http.js';
import { pushTestImage } from './support/push-image.js';
import { composeImage, imageBytes, makeLayer } from './support/shared-layers.js';
import { withDeadline } from './support/run.js';
import { runWharf, spawnWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';
import type { TestImage } from './support/make-image.js';
import { makeSignature, pushSignature } from './support/make-referrer.js';
import { exists } from './support/exists.js';

const testTimeoutMs = 120_000;

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-gc-'));
});
afterEach(async () => rm(work, { recursive: true, force: true }));

function blobPath(dataDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** Two apps on one base layer: deleting one must free its own layer and config, never the shared one. */
async function twoApps(): Promise<{ a: TestImage; b: TestImage; shared: string; onlyA: string }> {
  const base = await makeLayer('gc/base', 20_000);
  const layerA = await makeLayer('gc/a', 30_000);
  const layerB = await makeLayer('gc/b', 25_000);
  return {
    a: composeImage('gc/app-a', [base, layerA]),
    b: composeImage('gc/app-b', [base, layerB]),
    shared: base.descriptor.digest,
    onlyA: layerA.descriptor.digest,
  };
}

async function pullsWhole(url: string, name: string, tag: string, image: TestImage): Promise<void> {
  const manifest = await call(url, `/v2/${name}/manifests/${tag}`, {
    headers: { accept: image.root.mediaType },
  });
  expect(manifest.status, `${name}:${tag}`).toBe(200);
  expect(Buffer.from(await manifest.arrayBuffer()).equals(image.root.bytes)).toBe(true);
  for (const [digest, bytes] of image.blobs) {
    const blob = await call(url, `/v2/${name}/blobs/${digest}`);
    expect(blob.status, `${name} blob ${digest}`).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).equals(bytes)).toBe(true);
  }
}

describe('wharf gc', () => {
  let wharf: WharfHandle | undefined;
  afterEach(async () => {
    await wharf?.close();
    wharf = undefined;
  });

  it(
    'frees the bytes of a DELETEd manifest (its own layer, config and manifest), keeps the shared layer and the other image whole',
    async () => {
      const { a, b, shared, onlyA } = await twoApps();
      // inUseMs 0: this test's own pushes must not keep anything from this gc.
      wharf = await startWharf({ dataDir: join(work, 'data'), lifecycle: { inUseMs: 0 } });
      await pushTestImage(wharf.url, 'team/a', 'v1', a);
      await pushTestImage(wharf.url, 'team/b', 'v1', b);
      const deleted = await call(wharf.url, `/v2/team/a/manifests/${a.root.digest}`, { method: 'DELETE' });
      expect(deleted.status).toBe(202);
      // A DELETE alone frees nothing: the bytes go at the next gc.
      expect(await exists(blobPath(wharf.dataDir, onlyA))).toBe(true);

      const report = await wharf.server.runGc({ graceMs: 0 });
      const freed = [...a.blobs.keys()].filter((d) => d !== shared);
      expect(report.blobs.map((blob) => blob.digest).sort()).toEqual([...freed, a.root.digest].sort());
      expect(report.bytes).toBe(imageBytes(a) - (a.blobs.get(shared)?.length ?? 0));
      for (const digest of [...freed, a.root.digest]) expect(await exists(blobPath(wharf.dataDir, digest))).toBe(false);
      expect(await exists(blobPath(wharf.dataDir, shared))).toBe(true);
      await pullsWhole(wharf.url, 'team/b', 'v1', b);
      expect((await call(wharf.url, `/v2/team/a/blobs/${onlyA}`)).status).toBe(404);
      // A second run finds nothing more.
      expect((await wharf.server.runGc({ graceMs: 0 })).bytes).toBe(0);
    },
    testTimeoutMs,
  );

  it(
    'keeps untagged manifests and unreferenced blobs within the grace period and while in use, then collects them',
    async () => {
      const { a, b } = await twoApps();
      wharf = await startWharf({ dataDir: join(work, 'data'), lifecycle: { inUseMs: 0 } });
      await pushTestImage(wharf.url, 'team/app', 'v1', a);
      // The tag moves: a's manifest is untagged now.
      await pushTestImage(wharf.url, 'team/app', 'v1', b);
      const kept = await wharf.server.runGc({ graceMs: 60 * 60 * 1000 });
      expect(kept.bytes).toBe(0);
      expect(kept.manifests).toEqual([]);
      // A pull by digest within the in-use window keeps it from a gc with no grace at all.
      await wharf.close();
      wharf = await startWharf({ dataDir: join(work, 'data'), lifecycle: { inUseMs: 60_000 } });
      expect((await call(wharf.url, `/v2/team/app/manifests/${a.root.digest}`)).status).toBe(200);
      const inUse = await wharf.server.runGc({ graceMs: 0 });
      expect(inUse.manifests.map((m) => m.digest)).not.toContain(a.root.digest);
      await wharf.close();
      wharf = await startWharf({ dataDir: join(work, 'data'), lifecycle: { inUseMs: 0 } });
      const collected = await wharf.server.runGc({ graceMs: 0 });
      expect(collected.manifests).toEqual([{ repository: 'team/app', digest: a.root.digest, size: a.root.size }]);
      expect((await call(wharf.url, `/v2/team/app/manifests/${a.root.digest}`)).status).toBe(404);
      await pullsWhole(wharf.url, 'team/app', 'v1', b);
    },
    testTimeoutMs,
  );

  it(
    'wharf gc --dry-run prints what would go and the bytes, deletes nothing; wharf gc then frees exactly that',
    async () => {
      const { a, b, shared, onlyA } = await twoApps();
      const dataDir = join(work, 'data');
      const served = await spawnWharf(['--data', dataDir]);
      try {
        await pushTestImage(served.url, 'team/a', 'v1', a);
        await pushTestImage(served.url, 'team/b', 'v1', b);
        expect((await call(served.url, `/v2/team/a/manifests/v1`, { method: 'DELETE' })).status).toBe(202);

        // Beside serve: a dry run reads the index read-only; a real run is refused with a way forward.
        const beside = await runWharf(['gc', '--dry-run', '--grace', '0', '--data', dataDir]);
        expect(beside.code, beside.stderr).toBe(0);
        const refused = await runWharf(['gc', '--data', dataDir]);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(
          new RegExp(`^error: wharf serve \\(pid ${served.child.pid}\\) holds .*kill -USR2 ${served.child.pid}`),
        );
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }

      const dry = await runWharf(['gc', '--dry-run', '--grace', '0', '--data', dataDir]);
      expect(dry.code, dry.stderr).toBe(0);
      const lines = dry.stdout.trim().split('\n');
      // The tag was deleted, so a's manifest is untagged; its own blobs and links go with it.
      expect(lines).toContain(`manifest  team/a@${a.root.digest}  untagged, unreferenced`);
      expect(lines).toContain(`link      team/a -> ${onlyA}  no manifest refers to it`);
      expect(lines.some((line) => line.startsWith(`blob      ${onlyA}`))).toBe(true);
      expect(lines.some((line) => line.includes(shared) && line.startsWith('blob'))).toBe(false);
      expect(lines.at(-1)).toMatch(/^would free \S+ \S+: 1 manifest, 3 links, 3 blobs, 0 unindexed files, 0 uploads$/);
      expect(await exists(blobPath(dataDir, onlyA))).toBe(true);

      const real = await runWharf(['gc', '--grace', '0', '--json', '--data', dataDir]);
      expect(real.code, real.stderr).toBe(0);
      const report = JSON.parse(real.stdout) as { dryRun: boolean; bytes: number; blobs: { digest: string }[] };
      expect(report.dryRun).toBe(false);
      expect(report.bytes).toBe(imageBytes(a) - (a.blobs.get(shared)?.length ?? 0));
      expect(await exists(blobPath(dataDir, onlyA))).toBe(false);
      expect(await exists(blobPath(dataDir, shared))).toBe(true);
    },
    testTimeoutMs,
  );
  // Round 2 of the planted-bug audit (docs/mutation-testing.md): gc that ignored store.pin, that
  // collected the referrer of a tagged image, or that counted only when content was created (not
  // when it was last read) against the grace period, passed every test above.
  it(
    'keeps store.pin repositories and the referrers of what stays; a read within the grace period keeps an old manifest',
    async () => {
      const base = await makeLayer('gc/round2-base', 20_000);
      // One untagged image per repository (digests differ: a read of one must not count for another).
      const images = new Map<string, { old: TestImage; current: TestImage }>();
      for (const name of ['team/pinned', 'team/read', 'team/signed']) {
        images.set(name, {
          old: composeImage(`${name}/old`, [base, await makeLayer(`${name}/old`, 10_000)]),
          current: composeImage(`${name}/current`, [base]),
        });
      }
      const of = (name: string): { old: TestImage; current: TestImage } =>
        images.get(name) as { old: TestImage; current: TestImage };
      wharf = await startWharf({ dataDir: join(work, 'data'), lifecycle: { inUseMs: 0, pin: ['team/pinned'] } });
      // In each repository the tag moves: the old image's manifest is untagged.
      for (const [name, { old, current }] of images) {
        await pushTestImage(wharf.url, name, 'v1', old);
        await pushTestImage(wharf.url, name, 'v1', current);
      }
      // The current image in team/signed has a signature: an untagged manifest whose subject stays.
      const signed = of('team/signed').current;
      const signature = makeSignature(signed.root, 'gc: signature');
      await pushSignature(wharf.url, 'team/signed', signed.root, signature, { tagSchema: false });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const readAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
      const readOld = of('team/read').old;
      const read = await call(wharf.url, `/v2/team/read/manifests/${readOld.root.digest}`, {
        headers: { accept: readOld.root.mediaType },
      });
      expect(read.status).toBe(200);
      await read.arrayBuffer();
      const untagged = (name: string): { repository: string; digest: string; size: number } => ({
        repository: name,
        digest: of(name).old.root.digest,
        size: of(name).old.root.size,
      });

      // The grace period ends at readAt: all was created before it; only team/read's old image was read after.
      const graceMs = 60 * 60 * 1000;
      const first = await wharf.server.store.gc({ graceMs, now: readAt + graceMs });
      expect(first.manifests).toEqual([untagged('team/signed')]);

      // Past the read: team/read's old image goes too; the pinned repository and the signature stay.
      const second = await wharf.server.store.gc({ graceMs: 0 });
      expect(second.manifests).toEqual([untagged('team/read')]);
      const pinned = of('team/pinned').old;
      await pullsWhole(wharf.url, 'team/pinned', pinned.root.digest, pinned);
      await pullsWhole(wharf.url, 'team/signed', 'v1', signed);
      const referrers = await call(wharf.url, `/v2/team/signed/referrers/${signed.root.digest}`);
      expect(referrers.status).toBe(200);
      const listed = (await referrers.json()) as { manifests: { digest: string }[] };
      expect(listed.manifests.map((m) => m.digest)).toEqual([signature.root.digest]);
      await pullsWhole(wharf.url, 'team/signed', signature.root.digest, signature);
    },
    testTimeoutMs,
  );
});
