/**
 * The index's schema (store/database.ts) in process: which files in a migrations folder are
 * migrations and in what order they run, and the read-only open that `wharf ls`, `stats` and
 * `export` use beside a serving wharf (no migration, no write, an older index refused). Real
 * SQLite files in a temp directory; the migrations folders are written by the test.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { indexPath, migrate, migrationsDir, openDatabase, openReadOnlyDatabase } from '../src/store/database.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-database-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A migrations folder holding `files` (name → SQL). */
async function migrationsFolder(files: Record<string, string>): Promise<string> {
  const dir = join(work, `migrations-${Object.keys(files).length}-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql);
  return dir;
}

function tables(db: Database.Database): string[] {
  return db
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all()
    .map((row) => row.name);
}

/** The schema version of the migrations that ship (openDatabase applies them all). */
function latestVersion(): number {
  const db = openDatabase(join(work, 'latest.db'));
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

describe('migrate', () => {
  it('runs only NNNN-name.sql files, in version order; a README, a backup or a prefixed copy is not a migration', async () => {
    const dir = await migrationsFolder({
      '0001-first.sql': 'CREATE TABLE one (x INTEGER);',
      '0002-second.sql': 'CREATE TABLE two (x INTEGER);',
      'README.md': 'not SQL at all',
      // An editor's backup and a renamed copy: each would break the index if it ran.
      '0003-second.sql.orig': 'DROP TABLE two;',
      'x0004-copy.sql': 'DROP TABLE one;',
    });
    const db = new Database(join(work, 'index.db'));
    try {
      expect(migrate(db, dir)).toBe(2);
      expect(tables(db)).toEqual(['one', 'two']);
      // Run again: nothing is pending, nothing runs twice.
      expect(migrate(db, dir)).toBe(2);
    } finally {
      db.close();
    }
  });

  it('the shipped migrations bring a new index to the latest version, with its tables', () => {
    const db = openDatabase(indexPath(work));
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(latestVersion());
      expect(tables(db)).toEqual(
        expect.arrayContaining(['blobs', 'manifests', 'manifest_references', 'repositories', 'tags', 'uploads']),
      );
    } finally {
      db.close();
    }
  });
});

describe('openReadOnlyDatabase', () => {
  it('opens an index at the latest version for reading, and refuses writes through it', () => {
    openDatabase(indexPath(work)).close();
    const db = openReadOnlyDatabase(indexPath(work));
    try {
      expect(db.readonly).toBe(true);
      expect(db.pragma('user_version', { simple: true })).toBe(latestVersion());
      expect(db.prepare('SELECT count(*) AS n FROM blobs').get()).toEqual({ n: 0 });
      expect(() => db.prepare("INSERT INTO repositories (name, created_at) VALUES ('x', 0)").run()).toThrow(/readonly/);
    } finally {
      db.close();
    }
  });

  it('refuses an older index and says to migrate it with serve; the file is left as it was', async () => {
    const path = indexPath(work);
    const first = await migrationsFolder({});
    await copyFile(join(migrationsDir, '0001-init.sql'), join(first, '0001-init.sql'));
    const old = new Database(path);
    migrate(old, first);
    old.close();
    expect(() => openReadOnlyDatabase(path)).toThrow(
      new Error(`${path} is at schema version 1, expected ${latestVersion()}: run wharf serve once to migrate it`),
    );
    const after = new Database(path, { readonly: true });
    try {
      expect(after.pragma('user_version', { simple: true })).toBe(1);
    } finally {
      after.close();
    }
  });

  it('never creates a missing index: the open fails and no file appears', () => {
    const path = indexPath(work);
    expect(() => openReadOnlyDatabase(path)).toThrow(/unable to open database file/);
    expect(existsSync(path)).toBe(false);
  });

  it('with no migrations at all, the expected version is 0: a fresh SQLite file opens', async () => {
    const path = join(work, 'bare.db');
    new Database(path).close();
    const db = openReadOnlyDatabase(path, await migrationsFolder({}));
    try {
      expect(db.readonly).toBe(true);
    } finally {
      db.close();
    }
  });
});

// Round 7c of the planted-bug audit: `synchronous = OFF` passed every test, the kill -9 ones too (the
// page cache survives a killed process, as with the blob files: see store-durability.test.ts). What a
// test here can check is the setting itself: WAL with synchronous NORMAL, where a commit survives the
// process dying and a power loss can drop only the last transactions, never corrupt the index.
describe('openDatabase', () => {
  it('opens the index in WAL mode with synchronous NORMAL and foreign keys on', () => {
    const db = openDatabase(join(work, 'durable.db'));
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
      expect(db.pragma('synchronous', { simple: true })).toBe(1);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    } finally {
      db.close();
    }
  });
});
