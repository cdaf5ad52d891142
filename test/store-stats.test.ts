/**
 * The dates `wharf stats` reports, in process against the store's own index (round 6 of the
 * planted-bug audit, docs/mutation-testing.md): `stored` is the oldest and newest blob row, `accessed`
 * the oldest and newest read and how many blobs were never read. stats.test.ts checks only that
 * oldest <= newest, which an oldest of 0 (or of the newest read) passes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectStoreStats } from '../src/store/store-stats.js';
import { call } from './support/http.js';
import { makeImage, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

let work: string;
let wharf: WharfHandle;
let first: TestImage;
let second: TestImage;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-store-stats-'));
  wharf = await startWharf({ dataDir: join(work, 'data') });
  first = await makeImage({ seed: 'store-stats/first', layers: 1 });
  second = await makeImage({ seed: 'store-stats/second', layers: 1 });
}, 60_000);

afterAll(async () => {
  await wharf?.close();
  await rm(work, { recursive: true, force: true });
});

describe('store stats', () => {
  it('give the oldest and newest stored and read times, and the blobs never read', async () => {
    await pushTestImage(wharf.url, 'team/first', 'v1', first);
    await sleep(20);
    await pushTestImage(wharf.url, 'team/second', 'v1', second);
    // Pushes count as reads too; then two reads some milliseconds apart. The store writes read times
    // when gc runs (or in batches).
    const [firstLayer] = first.images[0]?.layers ?? [];
    const [secondLayer] = second.images[0]?.layers ?? [];
    if (firstLayer === undefined || secondLayer === undefined) throw new Error('no layer');
    await (await call(wharf.url, `/v2/team/first/blobs/${firstLayer.digest}`)).arrayBuffer();
    await sleep(20);
    await (await call(wharf.url, `/v2/team/second/blobs/${secondLayer.digest}`)).arrayBuffer();
    await wharf.server.runGc({ graceMs: 365 * 24 * 3600 * 1000 });

    const db = new Database(join(wharf.dataDir, 'index.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db
        .prepare<[], { created_at: number; accessed_at: number | null }>('SELECT created_at, accessed_at FROM blobs')
        .all();
      const created = rows.map((r) => r.created_at);
      const read = rows.flatMap((r) => (r.accessed_at === null ? [] : [r.accessed_at]));
      expect(Math.min(...created)).toBeLessThan(Math.max(...created));
      expect(Math.min(...read)).toBeLessThan(Math.max(...read));

      const stats = collectStoreStats(db, () => undefined);
      expect(stats.stored).toEqual({ oldest: Math.min(...created), newest: Math.max(...created) });
      expect(stats.accessed).toEqual({
        oldest: Math.min(...read),
        newest: Math.max(...read),
        neverRead: rows.length - read.length,
      });
    } finally {
      db.close();
    }
  }, 60_000);
});
