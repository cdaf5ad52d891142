/**
 * @module store/database
 * Opens the SQLite index and applies migrations/NNNN-*.sql in order,
 * tracked in PRAGMA user_version. Migrations are never edited once landed.
 */
import Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export type Db = Database.Database;

/** The index file of the store at `root`. */
export function indexPath(root: string): string {
  return join(root, 'index.db');
}

/** Whether a store's index exists (a check before opening it read-only, which cannot create it). */
export function indexExists(root: string): boolean {
  return existsSync(indexPath(root));
}

/** migrations/ sits at the package root, beside both src/ and dist/. */
export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));

interface Migration {
  version: number;
  file: string;
}

function listMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, match: /^(\d{4})-[\w-]+\.sql$/.exec(file) }))
    .filter((m): m is { file: string; match: RegExpExecArray } => m.match !== null)
    .map(({ file, match }) => ({ version: Number(match[1]), file }));
  // Stryker disable next-line MethodExpression,ArrowFunction,ArithmeticOperator: readdirSync already gives names in strcmp order (libuv's scandir sorts them: uv__fs_scandir_sort), and four-digit versions order as their names do; the sort says what the order must be rather than making it.
  return migrations.sort((a, b) => a.version - b.version);
}

export function migrate(db: Db, dir = migrationsDir): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const pending = listMigrations(dir).filter((m) => m.version > current);
  for (const migration of pending) {
    const sql = readFileSync(join(dir, migration.file), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${migration.version}`);
    })();
  }
  return db.pragma('user_version', { simple: true }) as number;
}

export function openDatabase(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // NORMAL under WAL: a commit survives a process crash; only power loss can drop the last transactions.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/**
 * A read-only view of an existing index, beside a serving wharf (WAL lets a
 * reader in while it writes). No migration, no write: an older index is refused.
 */
export function openReadOnlyDatabase(path: string, dir = migrationsDir): Db {
  const db = new Database(path, {
    readonly: true,
    // Stryker disable next-line BooleanLiteral: a readonly open is SQLITE_OPEN_READONLY whatever fileMustExist says (better-sqlite3 src/objects/database.cpp: `readonly ? SQLITE_OPEN_READONLY : must_exist ? ...`), so a missing file is SQLITE_CANTOPEN either way; it says what is meant.
    fileMustExist: true,
  });
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  const latest = listMigrations(dir).at(-1)?.version ?? 0;
  if (version !== latest) {
    db.close();
    throw new Error(`${path} is at schema version ${version}, expected ${latest}: run wharf serve once to migrate it`);
  }
  return db;
}
