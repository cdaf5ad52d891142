/**
 * @module store/verify
 * Checks a store against itself and changes nothing: every `blobs` row has its
 * file with the right size (and, unless quick, the right digest), every file
 * under blobs/ has a row, manifests, tags and links point at rows that exist,
 * upload files hold their committed bytes. It opens the index read-only, so it
 * may run beside a serving wharf (WAL lets a reader in); rows are read in small
 * pages and files hashed outside any transaction, so a long run holds back
 * no checkpoint. It reports; `--repair` (store/repair.ts) acts on the report.
 *
 * Two findings are harmless and not problems: a file under blobs/ with no row
 * (a crash between rename and index insert leaves one; gc removes it) and a
 * tmp/*.part file (a write in progress, or left by a crash: removed at start).
 */
import Database from 'better-sqlite3';
import { relative } from 'node:path';
import { createDigester, digestAlgorithm, formatDigest, parseDigest } from '../oci/digest.js';
import type { Digest } from '../oci/digest.js';
import { BlobFiles } from './blob-files.js';
import { indexExists, indexPath } from './database.js';
import { checkIndexRows, type IndexCounts } from './verify-index.js';

export type ProblemKind =
  | 'missing-file'
  | 'size-mismatch'
  | 'digest-mismatch'
  | 'unreadable'
  | 'unexpected-file'
  | 'bad-row'
  | 'broken-reference'
  | 'index-corrupt'
  | 'upload-file-missing'
  | 'upload-file-short';

export interface VerifyProblem {
  kind: ProblemKind;
  /** One line, naming the digest or path concerned. */
  message: string;
  /** The blob concerned, for the kinds `--repair` acts on (missing-file, size-mismatch, digest-mismatch). */
  digest?: Digest;
}

export interface UnindexedFile {
  digest: Digest;
  /** Relative to the store root. */
  path: string;
  size: number;
}

export interface TempFile {
  path: string;
  size: number;
  /** How long before the check started the file was last written. */
  idleMs: number;
}

export interface VerifyReport {
  quick: boolean;
  blobs: { rows: number; bytes: number; hashedBytes: number };
  index: IndexCounts;
  uploads: { sessions: number; filesWithoutSession: number };
  unindexed: UnindexedFile[];
  temp: TempFile[];
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  /** Sizes only, no hashing. */
  quick?: boolean;
  /** Temp files last written before this moment are reported (default: now). */
  startedAt?: number;
  /**
   * The store's files (default: those under root). Tests pass a BlobFiles that changes the store at a
   * chosen step, as a live server may between two of verify's reads.
   */
  files?: BlobFiles;
}

export class StoreNotFoundError extends Error {
  readonly code = 'STORE_NOT_FOUND';
}

/** Rows per page: small read transactions, so the writer's checkpoints are never held back for long. */
const pageRows = 500;

export async function verifyStore(root: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const quick = options.quick === true;
  const startedAt = options.startedAt ?? Date.now();
  if (!indexExists(root)) throw new StoreNotFoundError(`no wharf store at ${root}: index.db not found`);
  const db = new Database(indexPath(root), {
    readonly: true,
    // Stryker disable next-line BooleanLiteral: a read-only open never creates the file (SQLITE_CANTOPEN either way), and indexExists is checked just above.
    fileMustExist: true,
  });
  try {
    db.pragma('busy_timeout = 5000');
    const files = options.files ?? new BlobFiles(root);
    const problems: VerifyProblem[] = [];
    const report: VerifyReport = {
      quick,
      blobs: { rows: 0, bytes: 0, hashedBytes: 0 },
      index: checkIndexRows(db, (kind, message) => problems.push({ kind, message })),
      uploads: { sessions: 0, filesWithoutSession: 0 },
      unindexed: [],
      // Stryker disable next-line ArrayDeclaration: staleTempFiles replaces it below before the report is returned, and nothing reads it before.
      temp: [],
      problems,
    };
    const rowSize = db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?');
    await checkBlobRows(db, files, report);
    await checkBlobFiles(files, root, report, (digest) => rowSize.get(digest) !== undefined);
    await checkUploads(db, files, root, report);
    report.temp = await staleTempFiles(files, root, startedAt);
    return report;
  } finally {
    db.close();
  }
}

/** Every row has its file, of the row's size and (unless quick) hashing to the row's digest. */
async function checkBlobRows(db: Database.Database, files: BlobFiles, report: VerifyReport): Promise<void> {
  // The first page has no lower bound: a row whose digest is '' sorts before any bound it could take.
  const first = db.prepare<[number], { digest: string; size: number }>(
    'SELECT digest, size FROM blobs ORDER BY digest LIMIT ?',
  );
  const after = db.prepare<[string, number], { digest: string; size: number }>(
    'SELECT digest, size FROM blobs WHERE digest > ? ORDER BY digest LIMIT ?',
  );
  const stillThere = db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?');
  const problem = (kind: ProblemKind, message: string, digest?: Digest): void =>
    void report.problems.push(digest === undefined ? { kind, message } : { kind, message, digest });
  // Stryker disable next-line StringLiteral: never read: each row sets last before the next page is asked for.
  for (let last = '', rows = first.all(pageRows); rows.length > 0; rows = after.all(last, pageRows)) {
    for (const row of rows) {
      last = row.digest;
      report.blobs.rows++;
      report.blobs.bytes += row.size;
      const digest = parseDigest(row.digest);
      if (digest === undefined) {
        problem('bad-row', `blob row ${JSON.stringify(row.digest.slice(0, 200))} is not a valid digest`);
        continue;
      }
      const path = files.pathOf(digest);
      const size = await files.blobFileSize(digest);
      // A row removed meanwhile (gc on a live server) is not a missing file.
      if (size === undefined && stillThere.get(digest) === undefined) continue;
      if (size === undefined) problem('missing-file', `blob ${digest}: file ${path} is missing`, digest);
      else if (size === 'not-a-file') problem('unexpected-file', `blob ${digest}: ${path} is not a regular file`);
      else if (size !== row.size) {
        problem('size-mismatch', `blob ${digest}: file is ${size} bytes, the index says ${row.size}`, digest);
      } else if (!report.quick) {
        const computed = await hashFile(files, digest, report);
        if (computed !== undefined && computed !== digest) {
          problem('digest-mismatch', `blob ${digest}: file content hashes to ${computed}`, digest);
        }
      }
    }
  }
}

/** Every file under blobs/ is named blobs/<alg>/<xx>/<hex> and has a row; one without is unindexed. */
async function checkBlobFiles(
  files: BlobFiles,
  root: string,
  report: VerifyReport,
  isIndexed: (digest: Digest) => boolean,
): Promise<void> {
  for await (const entry of files.listBlobFiles()) {
    const { digest } = entry;
    if (digest === undefined || !entry.isFile) {
      report.problems.push({
        kind: 'unexpected-file',
        message: `${relative(root, entry.path)}: not a blob file wharf writes (blobs/<alg>/<xx>/<hex>)`,
      });
      continue;
    }
    if (isIndexed(digest)) continue;
    const size = await files.blobFileSize(digest);
    if (typeof size !== 'number') continue;
    report.unindexed.push({ digest, path: relative(root, entry.path), size });
    if (report.quick) continue;
    const computed = await hashFile(files, digest, report);
    if (computed !== undefined && computed !== digest) {
      report.problems.push({
        kind: 'digest-mismatch',
        message: `unindexed ${relative(root, entry.path)}: content hashes to ${computed}`,
        digest,
      });
    }
  }
}

/** An upload file holds at least the bytes its session row has committed (more is a cut-off chunk). */
async function checkUploads(
  db: Database.Database,
  files: BlobFiles,
  root: string,
  report: VerifyReport,
): Promise<void> {
  const rows = db.prepare<[], { id: string; size: number }>('SELECT id, size FROM uploads').all();
  const current = db.prepare<[string], { size: number }>('SELECT size FROM uploads WHERE id = ?');
  const ids = new Set<string>();
  for (const row of rows) {
    report.uploads.sessions++;
    ids.add(row.id);
    if (!/^[\w-]+$/.test(row.id)) {
      report.problems.push({ kind: 'bad-row', message: `upload row ${JSON.stringify(row.id)} is not a session id` });
      continue;
    }
    const path = files.uploadPath(row.id);
    const size = await files.uploadFileSize(row.id);
    // A session closed or cancelled meanwhile (live server) has rightly lost its file.
    const committed = current.get(row.id)?.size;
    if (committed === undefined) continue;
    if (size === undefined) {
      report.problems.push({ kind: 'upload-file-missing', message: `upload ${row.id}: file ${path} is missing` });
    } else if (size === 'not-a-file' || size < committed) {
      report.problems.push({
        kind: 'upload-file-short',
        message: `upload ${row.id}: ${relative(root, path)} holds ${size === 'not-a-file' ? 'no file' : `${size} bytes`}, ${committed} committed`,
      });
    }
  }
  for (const file of await files.listUploadFiles()) if (!ids.has(file)) report.uploads.filesWithoutSession++;
}

async function staleTempFiles(files: BlobFiles, root: string, startedAt: number): Promise<TempFile[]> {
  return (await files.listTempFiles())
    .filter((file) => file.mtimeMs < startedAt)
    .map((file) => ({ path: relative(root, file.path), size: file.size, idleMs: startedAt - file.mtimeMs }));
}

/** Streams the file through its digest's algorithm; undefined (and a problem) when it cannot be read. */
async function hashFile(files: BlobFiles, digest: Digest, report: VerifyReport): Promise<Digest | undefined> {
  const hash = createDigester(digestAlgorithm(digest));
  try {
    for await (const chunk of files.openRead(digest)) {
      hash.update(chunk);
      report.blobs.hashedBytes += chunk.byteLength;
    }
  } catch (error) {
    report.problems.push({ kind: 'unreadable', message: `blob ${digest}: cannot read: ${(error as Error).message}` });
    return undefined;
  }
  return formatDigest(digestAlgorithm(digest), hash);
}
