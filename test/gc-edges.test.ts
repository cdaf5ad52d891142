/**
 * gc at its edges, in process (round 6 of the planted-bug audit, docs/mutation-testing.md): an
 * untagged index goes with its platforms in one run; the grace period's cutoff is exact (content
 * created at the cutoff stays, a millisecond older goes); a blob file without a row is kept within
 * the grace period; and /metrics counts each gc run once however often it is scraped.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call } from './support/http.js';
import { makeImage, sha256Digest } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf, type WharfHandle } from './support/wharf.js';
import { exists } from './support/exists.js';

const testTimeoutMs = 120_000;

let work: string;
let wharf: WharfHandle | undefined;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-gc-edges-'));
});
afterEach(async () => {
  await wharf?.close();
  wharf = undefined;
  await rm(work, { recursive: true, force: true });
});

function blobPath(dataDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

async function start(): Promise<WharfHandle> {
  // inUseMs 0: the test's own pushes must not keep anything from gc.
  wharf = await startWharf({ dataDir: join(work, 'data'), lifecycle: { inUseMs: 0 } });
  return wharf;
}

describe('gc', () => {
  it(
    'collects an untagged index and its platform manifests in one run',
    async () => {
      const server = await start();
      const image = await makeImage({
        seed: 'gc-edges/index',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
      });
      await pushTestImage(server.url, 'team/multi', 'v1', image);
      expect((await call(server.url, '/v2/team/multi/manifests/v1', { method: 'DELETE' })).status).toBe(202);
      const report = await server.server.runGc({ graceMs: 0 });
      const manifests = [image.root, ...image.images.map((i) => i.manifest)];
      expect(report.manifests.map((m) => m.digest).sort()).toEqual(manifests.map((m) => m.digest).sort());
      expect(report.blobs.map((b) => b.digest).sort()).toEqual(
        [...image.blobs.keys(), ...manifests.map((m) => m.digest)].sort(),
      );
      for (const digest of image.blobs.keys()) expect(await exists(blobPath(server.dataDir, digest))).toBe(false);
      expect((await server.server.runGc({ graceMs: 0 })).manifests).toEqual([]);
    },
    testTimeoutMs,
  );

  it(
    'keeps an untagged manifest created exactly at the cutoff, and collects it a millisecond later',
    async () => {
      const server = await start();
      const old = await makeImage({ seed: 'gc-edges/old', layers: 1 });
      const current = await makeImage({ seed: 'gc-edges/current', layers: 1 });
      await pushTestImage(server.url, 'team/edge', 'v1', old);
      await pushTestImage(server.url, 'team/edge', 'v1', current);
      const db = new Database(join(server.dataDir, 'index.db'), { readonly: true, fileMustExist: true });
      let createdAt: number;
      try {
        const row = db
          .prepare<[string], { created_at: number }>('SELECT created_at FROM manifests WHERE digest = ?')
          .get(old.root.digest);
        if (row === undefined) throw new Error('no manifest row');
        createdAt = row.created_at;
      } finally {
        db.close();
      }
      const graceMs = 60_000;
      const atCutoff = await server.server.store.gc({ graceMs, now: createdAt + graceMs, dryRun: true });
      expect(atCutoff.manifests.map((m) => m.digest)).not.toContain(old.root.digest);
      const past = await server.server.store.gc({ graceMs, now: createdAt + graceMs + 1, dryRun: true });
      expect(past.manifests.map((m) => m.digest)).toContain(old.root.digest);
    },
    testTimeoutMs,
  );

  it(
    'keeps a blob file without an index row within the grace period, and removes it after',
    async () => {
      const server = await start();
      const bytes = Buffer.from('a file a crash left between rename and insert');
      const digest = sha256Digest(bytes);
      const path = blobPath(server.dataDir, digest);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, bytes);
      const kept = await server.server.runGc({ graceMs: 60 * 60 * 1000 });
      expect(kept.unindexed).toEqual([]);
      expect(await exists(path)).toBe(true);
      const swept = await server.server.runGc({ graceMs: 0 });
      expect(swept.unindexed).toEqual([{ digest, size: bytes.length }]);
      expect(await exists(path)).toBe(false);
    },
    testTimeoutMs,
  );

  it(
    'is counted once per run in /metrics, however often it is scraped',
    async () => {
      const server = await start();
      const scrape = async (): Promise<string> => (await call(server.url, '/metrics')).text();
      expect(await scrape()).toMatch(/^wharf_gc_runs_total 0$/m);
      await server.server.runGc({ graceMs: 0 });
      expect(await scrape()).toMatch(/^wharf_gc_runs_total 1$/m);
      expect(await scrape()).toMatch(/^wharf_gc_runs_total 1$/m);
      await server.server.runGc({ graceMs: 0 });
      expect(await scrape()).toMatch(/^wharf_gc_runs_total 2$/m);
    },
    testTimeoutMs,
  );
});
