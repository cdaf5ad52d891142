/**
 * @module test/support/store-snapshot
 * Everything a store holds, as comparable text: every index row of every table
 * (sorted) and every file under blobs/ and tmp/ with its size. Two equal
 * snapshots mean an operation left the store exactly as it was.
 */
import Database from 'better-sqlite3';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

const tables = ['repositories', 'blobs', 'repository_blobs', 'manifests', 'manifest_references', 'tags', 'uploads'];

export interface StoreSnapshot {
  rows: Record<string, string[]>;
  files: string[];
}

export async function snapshotStore(dataDir: string): Promise<StoreSnapshot> {
  const db = new Database(join(dataDir, 'index.db'), { readonly: true, fileMustExist: true });
  const rows: Record<string, string[]> = {};
  try {
    for (const table of tables)
      rows[table] = db
        .prepare(`SELECT * FROM ${table}`)
        .all()
        .map((r) => JSON.stringify(r))
        .sort();
  } finally {
    db.close();
  }
  const files: string[] = [];
  for (const dir of ['blobs', 'tmp']) {
    for await (const path of walk(join(dataDir, dir))) {
      files.push(`${relative(dataDir, path)} ${(await lstat(path)).size}`);
    }
  }
  return { rows, files: files.sort() };
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}
