/**
 * @module test/gc-pinned-links.test
 * gc never takes anything in a store.pin repository (store/gc-plan.ts, ADR 0008): not its untagged
 * manifests, and not its links either, even when no manifest names the blob (a blob pushed ahead of
 * its manifest, or kept there on purpose). The same loose blob in a repository not pinned goes, link
 * and row, so the test tells "pinned" from "nothing collected". Round 8a of the hand-planted bugs
 * (docs/mutation-testing.md): the pin was applied to manifests only, and no test had a loose blob in
 * a pinned repository.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/database.js';
import { planGc } from '../src/store/gc-plan.js';
import { GraphStore } from './support/graph-store.js';

let root: string;
let db: Db | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-gc-pinned-links-'));
});
afterEach(async () => {
  db?.close();
  db = undefined;
  await rm(root, { recursive: true, force: true });
});

describe('gc and store.pin', () => {
  it('keeps a loose link (and its blob) in a pinned repository, and collects the same in another', async () => {
    const store = await GraphStore.open(root);
    const kept = await store.blob('pinned/app', 'a blob pushed ahead of its manifest, pinned');
    const loose = await store.blob('scratch/app', 'a blob pushed ahead of its manifest, not pinned');
    const untagged = await store.image('pinned/app', 'untagged in a pinned repository', 'pushed');
    db = store.openIndex();
    const index = db;

    // Everything is past the grace period; nothing is in use.
    const plan = index.transaction(() =>
      planGc(index, {
        cutoff: Number.MAX_SAFE_INTEGER,
        inUse: new Set(),
        isPinned: (repository) => repository.startsWith('pinned/'),
      }),
    )();

    expect(plan.manifests).toEqual([]);
    expect(plan.links).toEqual([{ repository: 'scratch/app', digest: loose.digest }]);
    expect(plan.blobs).toEqual([{ digest: loose.digest, size: loose.size }]);
    expect(plan.bytes).toBe(loose.size);
    expect(plan.blobs.map((b) => b.digest)).not.toContain(kept.digest);
    expect(plan.blobs.map((b) => b.digest)).not.toContain(untagged.manifest.digest);
  });
});
