/**
 * @module test/support/archive-entries
 * Archive entries built in memory for the in-process import tests (what readTarEntries and
 * readDirEntries hand importArchive), and a scratch store for each test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import type { LayoutEntry } from '../../src/archive/layout-entry.js';
import { LocalStore } from '../../src/store/local-store.js';

export async function* list<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

/** A file entry of `data`, its body in `chunks` (one chunk by default). */
export function file(path: string, data: Buffer, chunks: readonly Buffer[] = [data]): LayoutEntry {
  return { path, type: 'file', size: data.length, body: list(chunks) };
}

export function dir(path: string): LayoutEntry {
  return { path, type: 'directory', size: 0, body: list([]) };
}

/** Where a layout keeps the blob of `digest`. */
export function blobName(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

export interface ScratchStore {
  /** This test's temp folder. */
  work: () => string;
  /** A store in `dir` (this test's `<work>/store` by default), closed after the test. */
  openStore: (dir?: string) => Promise<LocalStore>;
  /** Closes the store opened last, before the test ends (to open another in its place). */
  closeStore: () => void;
}

/** A fresh temp folder for each test of the file, removed after it with the store opened there. */
export function scratchStore(prefix: string): ScratchStore {
  let work: string | undefined;
  let store: LocalStore | undefined;
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), prefix));
  });
  const closeStore = (): void => {
    store?.close();
    store = undefined;
  };
  afterEach(async () => {
    closeStore();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    work = undefined;
  });
  const current = (): string => {
    if (work === undefined) throw new Error('scratchStore: used outside a test');
    return work;
  };
  return {
    work: current,
    openStore: async (dir = join(current(), 'store')) => {
      store = await LocalStore.open(dir);
      return store;
    },
    closeStore,
  };
}
