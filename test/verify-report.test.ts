/**
 * `verifyStore` in process (so the mutation runner sees it), one kind of damage per test, each done
 * for real on a store on disk: a file removed, cut, replaced by a directory or by other bytes; a
 * row with no file, a file with no row, rows written with foreign keys off, a page of index.db no
 * table uses; upload files missing, short or stray; temp files old and new. Each test asserts the
 * report's exact problems (kind, message, digest) and counts. A few steps happen "meanwhile", as a
 * live server changes the store between two of verify's reads: a BlobFiles subclass makes the change
 * at that step.
 */
import { appendFile, cp, lstat, mkdir, mkdtemp, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { BlobFiles, type FileSize } from '../src/store/blob-files.js';
import { StoreNotFoundError, verifyStore, type VerifyProblem } from '../src/store/verify.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { sha256 } from './support/http.js';
import { descriptorsUnder } from './support/open-descriptors.js';
import { seedStore, type SeededStore } from './support/seeded-store.js';

let root: string;
let image: SeededStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-verify-report-'));
  image = await seedStore(root);
});
afterEach(async () => rm(root, { recursive: true, force: true }));

/** Runs SQL on the store's index with a connection of its own (foreign keys off: the damage a careless tool does). */
function editIndex(dir: string, edit: (db: Database.Database) => void): void {
  const db = new Database(join(dir, 'index.db'));
  try {
    db.pragma('foreign_keys = OFF');
    edit(db);
  } finally {
    db.close();
  }
}

function rowSize(digest: Digest): number {
  const db = new Database(join(root, 'index.db'), { readonly: true });
  try {
    return db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?').get(digest)?.size ?? -1;
  } finally {
    db.close();
  }
}

/** Puts a file with no index row where the blob of `digest` goes. */
async function writeUnindexed(digest: Digest, data: string): Promise<string> {
  await mkdir(join(blobPath(root, digest), '..'), { recursive: true });
  await writeFile(blobPath(root, digest), data);
  return `blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`;
}

const byMessage = (a: VerifyProblem, b: VerifyProblem): number => a.message.localeCompare(b.message);

/** Changes the store at chosen steps of verify, as a live server may between two of its reads. */
class ChangingFiles extends BlobFiles {
  beforeBlobSize = new Map<string, () => Promise<void>>();
  afterBlobSize = new Map<string, () => Promise<void>>();
  beforeUploadSize = new Map<string, () => Promise<void>>();

  override async blobFileSize(digest: Digest): Promise<FileSize> {
    await this.beforeBlobSize.get(digest)?.();
    const size = await super.blobFileSize(digest);
    await this.afterBlobSize.get(digest)?.();
    return size;
  }

  override async uploadFileSize(id: string): Promise<FileSize> {
    await this.beforeUploadSize.get(id)?.();
    return super.uploadFileSize(id);
  }
}

describe('verifyStore reports', () => {
  it('nothing for a consistent store, with every count, and closes the index', async () => {
    const report = await verifyStore(root);
    expect(report).toStrictEqual({
      quick: false,
      blobs: { rows: 3, bytes: report.blobs.bytes, hashedBytes: report.blobs.bytes },
      index: { repositories: 1, manifests: 1, tags: 1, links: 2 },
      uploads: { sessions: 1, filesWithoutSession: 0 },
      unindexed: [],
      temp: [],
      problems: [],
    });
    expect(report.blobs.bytes).toBe(rowSize(image.config) + 100_000 + rowSize(image.manifest));
    expect(await descriptorsUnder(root)).toEqual([]);
  });

  it('STORE_NOT_FOUND, naming the folder, when there is no index.db', async () => {
    const missing = join(root, 'nothing-here');
    const error: unknown = await verifyStore(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreNotFoundError);
    expect(error).toMatchObject({
      code: 'STORE_NOT_FOUND',
      message: `no wharf store at ${missing}: index.db not found`,
    });
  });

  it('and changes nothing: a WAL a crash left is neither checkpointed nor removed', async () => {
    // A writer with its checkpoints off, copied while open: the copy is what a crash leaves.
    const writer = new Database(join(root, 'index.db'));
    const crashed = `${root}-crashed`;
    try {
      writer.pragma('wal_autocheckpoint = 0');
      writer.prepare('UPDATE blobs SET created_at = created_at + 1').run();
      await cp(root, crashed, { recursive: true });
    } finally {
      writer.close();
    }
    try {
      const before = [await readFile(join(crashed, 'index.db')), await readFile(join(crashed, 'index.db-wal'))];
      expect(before[1]?.length).toBeGreaterThan(0);
      expect((await verifyStore(crashed)).problems).toStrictEqual([]);
      expect([await readFile(join(crashed, 'index.db')), await readFile(join(crashed, 'index.db-wal'))]).toEqual(
        before,
      );
    } finally {
      await rm(crashed, { recursive: true, force: true });
    }
  });

  it('a missing file, a directory in a file’s place and a cut file, each once; digests only where repair acts', async () => {
    const manifestSize = rowSize(image.manifest);
    await rm(blobPath(root, image.config));
    await rm(blobPath(root, image.layer));
    await mkdir(blobPath(root, image.layer));
    await truncate(blobPath(root, image.manifest), 10);
    const expected: VerifyProblem[] = [
      {
        kind: 'missing-file',
        message: `blob ${image.config}: file ${blobPath(root, image.config)} is missing`,
        digest: image.config,
      },
      { kind: 'unexpected-file', message: `blob ${image.layer}: ${blobPath(root, image.layer)} is not a regular file` },
      {
        kind: 'size-mismatch',
        message: `blob ${image.manifest}: file is 10 bytes, the index says ${manifestSize}`,
        digest: image.manifest,
      },
    ];
    for (const quick of [false, true]) {
      const report = await verifyStore(root, { quick });
      expect([...report.problems].sort(byMessage)).toStrictEqual([...expected].sort(byMessage));
      expect(report.blobs.hashedBytes).toBe(0);
      expect(report.unindexed).toEqual([]);
    }
  });

  it('wrong bytes in a row’s file and in an unindexed file, naming what they hash to; quick hashes nothing', async () => {
    await flipByte(blobPath(root, image.layer), 5000);
    const flipped = sha256(await readFile(blobPath(root, image.layer)));
    const claimed = requireDigest(sha256('the bytes this file should hold'));
    const path = await writeUnindexed(claimed, 'other bytes');

    const quick = await verifyStore(root, { quick: true });
    expect(quick.quick).toBe(true);
    expect(quick.problems).toStrictEqual([]);
    expect(quick.blobs.hashedBytes).toBe(0);
    expect(quick.unindexed).toStrictEqual([{ digest: claimed, path, size: 11 }]);

    const full = await verifyStore(root);
    expect(full.quick).toBe(false);
    expect(full.problems).toStrictEqual([
      {
        kind: 'digest-mismatch',
        message: `blob ${image.layer}: file content hashes to ${flipped}`,
        digest: image.layer,
      },
      {
        kind: 'digest-mismatch',
        message: `unindexed ${path}: content hashes to ${sha256('other bytes')}`,
        digest: claimed,
      },
    ]);
    expect(full.blobs.hashedBytes).toBe(full.blobs.bytes + 11);
  });

  it('an unindexed file with the right bytes as unindexed only', async () => {
    const digest = requireDigest(sha256('left by a crash before its row'));
    const path = await writeUnindexed(digest, 'left by a crash before its row');
    const report = await verifyStore(root);
    expect(report.problems).toStrictEqual([]);
    expect(report.unindexed).toStrictEqual([{ digest, path, size: 30 }]);
  });

  it('a file under blobs/ wharf never writes, by its path', async () => {
    await writeFile(join(root, 'blobs', 'sha256', 'notes.txt'), 'x');
    const report = await verifyStore(root);
    expect(report.problems).toStrictEqual([
      {
        kind: 'unexpected-file',
        message: 'blobs/sha256/notes.txt: not a blob file wharf writes (blobs/<alg>/<xx>/<hex>)',
      },
    ]);
  });

  it('a blob row that is not a digest, by its first 200 characters, wherever it sorts', async () => {
    // 'A' sorts before every digest (and before any other text the paging could start from).
    const bad = `A${'b'.repeat(300)}`;
    editIndex(root, (db) => db.prepare('INSERT INTO blobs (digest, size, created_at) VALUES (?, 5, 0)').run(bad));
    const report = await verifyStore(root);
    expect(report.problems).toStrictEqual([
      { kind: 'bad-row', message: `blob row ${JSON.stringify(bad.slice(0, 200))} is not a valid digest` },
    ]);
    expect(report.blobs.rows).toBe(4);
  });

  it('a blob row with an empty digest (nothing sorts before it)', async () => {
    editIndex(root, (db) => db.prepare("INSERT INTO blobs (digest, size, created_at) VALUES ('', 5, 0)").run());
    const report = await verifyStore(root);
    expect(report.problems).toStrictEqual([{ kind: 'bad-row', message: 'blob row "" is not a valid digest' }]);
    expect(report.blobs.rows).toBe(4);
  });

  it('every row once, across pages of rows', async () => {
    const digests = Array.from({ length: 1_200 }, (_, i) => requireDigest(sha256(`row ${i}`)));
    editIndex(root, (db) => {
      const add = db.prepare('INSERT INTO blobs (digest, size, created_at) VALUES (?, 1, 0)');
      db.transaction(() => digests.forEach((digest) => add.run(digest)))();
    });
    const report = await verifyStore(root, { quick: true });
    expect(report.blobs.rows).toBe(1_203);
    expect(report.problems.map((p) => p.digest).sort()).toStrictEqual([...digests].sort());
    expect(report.problems.every((p) => p.kind === 'missing-file')).toBe(true);
  });

  it('rows written with foreign keys off, each once, by name', async () => {
    const missing = sha256('never stored');
    editIndex(root, (db) => {
      db.prepare(
        `INSERT INTO tags (repository_id, name, digest, source, updated_at)
         SELECT id, 'ghost', ?, 'pushed', 0 FROM repositories`,
      ).run(missing);
      db.prepare(
        'INSERT INTO repository_blobs (repository_id, digest, created_at) SELECT id, ?, 0 FROM repositories',
      ).run(missing);
      db.prepare('DELETE FROM blobs WHERE digest = ?').run(image.manifest);
    });
    const report = await verifyStore(root);
    // Foreign key violations the named checks explain are not counted again.
    expect(report.problems).toStrictEqual([
      { kind: 'broken-reference', message: `manifest ${image.manifest} in ${image.name}: no blob row for its bytes` },
      { kind: 'broken-reference', message: `tag ${image.name}:ghost points at ${missing}, not a manifest there` },
      { kind: 'broken-reference', message: `link ${image.name} → ${missing}: no blob row` },
    ]);
    expect(report.index).toStrictEqual({ repositories: 1, manifests: 1, tags: 2, links: 3 });
  });

  it('a tag pointing at a manifest that only another repository holds', async () => {
    editIndex(root, (db) => {
      const other = db.prepare("INSERT INTO repositories (name, created_at) VALUES ('other/app', 0)").run();
      db.prepare(
        "INSERT INTO tags (repository_id, name, digest, source, updated_at) VALUES (?, 'v9', ?, 'pushed', 0)",
      ).run(other.lastInsertRowid, image.manifest);
    });
    const report = await verifyStore(root);
    expect(report.problems).toStrictEqual([
      { kind: 'broken-reference', message: `tag other/app:v9 points at ${image.manifest}, not a manifest there` },
    ]);
    expect(report.index).toStrictEqual({ repositories: 2, manifests: 1, tags: 2, links: 2 });
  });

  it('a manifest whose repository row is gone, and counts the other rows left pointing at it', async () => {
    editIndex(root, (db) => db.prepare('DELETE FROM repositories').run());
    const report = await verifyStore(root);
    // SQLite's foreign_key_check lists tables in no documented order.
    expect([...report.problems].sort(byMessage)).toStrictEqual([
      { kind: 'broken-reference', message: 'index.db: 1 uploads row(s) refer to missing repositories rows' },
      { kind: 'broken-reference', message: 'index.db: 2 repository_blobs row(s) refer to missing repositories rows' },
      { kind: 'broken-reference', message: `manifest ${image.manifest}: its repository row is missing` },
    ]);
    expect(report.index).toStrictEqual({ repositories: 0, manifests: 1, tags: 1, links: 2 });
  });

  it('a page of index.db that no table uses (SQLite quick_check), as index-corrupt', async () => {
    // The store is closed: index.db holds everything. One more page, counted in its header, used by nothing.
    const file = join(root, 'index.db');
    const bytes = await readFile(file);
    const pages = bytes.readUInt32BE(28);
    expect(bytes.length).toBe(pages * bytes.readUInt16BE(16));
    bytes.writeUInt32BE(pages + 1, 28);
    await writeFile(file, Buffer.concat([bytes, Buffer.alloc(bytes.readUInt16BE(16))]));
    const report = await verifyStore(root);
    expect(report.problems).toStrictEqual([
      { kind: 'index-corrupt', message: `index.db: *** in database main ***\nPage ${pages + 1}: never used` },
    ]);
  });

  it('upload files missing, in a directory’s place or short; longer or exact is fine; a bad id; a stray file', async () => {
    const uploads = join(root, 'tmp', 'uploads');
    editIndex(root, (db) => {
      const add = db.prepare(
        'INSERT INTO uploads (id, repository_id, size, created_at, updated_at) SELECT ?, id, 5, 0, 0 FROM repositories',
      );
      for (const id of ['u-missing', 'u-dir', 'u-short', 'u-long', 'u-exact', 'a b']) add.run(id);
    });
    await mkdir(join(uploads, 'u-dir'));
    await writeFile(join(uploads, 'u-short'), 'abc');
    await writeFile(join(uploads, 'u-long'), 'abcdefgh');
    await writeFile(join(uploads, 'u-exact'), 'abcde');
    await writeFile(join(uploads, 'stray'), 'no session');
    await appendFile(join(uploads, image.uploadId), ' and a cut-off second');

    const report = await verifyStore(root);
    expect([...report.problems].sort(byMessage)).toStrictEqual(
      (
        [
          { kind: 'bad-row', message: 'upload row "a b" is not a session id' },
          { kind: 'upload-file-missing', message: `upload u-missing: file ${join(uploads, 'u-missing')} is missing` },
          { kind: 'upload-file-short', message: 'upload u-dir: tmp/uploads/u-dir holds no file, 5 committed' },
          { kind: 'upload-file-short', message: 'upload u-short: tmp/uploads/u-short holds 3 bytes, 5 committed' },
        ] satisfies VerifyProblem[]
      ).sort(byMessage),
    );
    expect(report.uploads).toStrictEqual({ sessions: 7, filesWithoutSession: 1 });
  });

  it('temp files last written before the run, with how long idle; not newer ones, nor other names', async () => {
    const tmp = join(root, 'tmp');
    const now = Date.now();
    const touch = async (name: string, at: number): Promise<number> => {
      await writeFile(join(tmp, name), 'partial');
      await utimes(join(tmp, name), new Date(at), new Date(at));
      return (await lstat(join(tmp, name))).mtimeMs;
    };
    const old = await touch('old.part', now - 3_600_000);
    const startedAt = await touch('edge.part', now - 60_000);
    await touch('new.part', now + 3_600_000);
    await touch('notes.txt', now - 3_600_000);

    const report = await verifyStore(root, { startedAt });
    expect(report.temp).toStrictEqual([{ path: 'tmp/old.part', size: 7, idleMs: startedAt - old }]);
    expect(report.problems).toStrictEqual([]);

    // Without startedAt the run starts now: the edge file is older than that, the newer one is not.
    const later = await verifyStore(root);
    expect(later.temp.map((t) => t.path).sort()).toEqual(['tmp/edge.part', 'tmp/old.part']);
  });
});

describe('verifyStore, beside a live server changing the store', () => {
  it('takes a row removed (with its file) between its page and its file check for no problem', async () => {
    const files = new ChangingFiles(root);
    files.beforeBlobSize.set(image.config, async () => {
      editIndex(root, (db) => {
        db.prepare('DELETE FROM repository_blobs WHERE digest = ?').run(image.config);
        db.prepare('DELETE FROM blobs WHERE digest = ?').run(image.config);
      });
      await rm(blobPath(root, image.config));
    });
    const report = await verifyStore(root, { files });
    expect(report.problems).toStrictEqual([]);
    expect(report.blobs.rows).toBe(3);
    expect(report.unindexed).toStrictEqual([]);
  });

  it('reports a row’s file removed between its size check and its hash as unreadable, and only that', async () => {
    const files = new ChangingFiles(root);
    files.afterBlobSize.set(image.layer, () => rm(blobPath(root, image.layer)));
    const report = await verifyStore(root, { files });
    expect(report.problems).toStrictEqual([
      {
        kind: 'unreadable',
        message: `blob ${image.layer}: cannot read: ENOENT: no such file or directory, open '${blobPath(root, image.layer)}'`,
      },
    ]);
  });

  it('skips an unindexed file gone before its size check; one gone before its hash is unreadable', async () => {
    const gone = requireDigest(sha256('gone before its size check'));
    const cut = requireDigest(sha256('gone before its hash'));
    await writeUnindexed(gone, 'gone before its size check');
    const path = await writeUnindexed(cut, 'gone before its hash');
    const files = new ChangingFiles(root);
    files.beforeBlobSize.set(gone, () => rm(blobPath(root, gone)));
    files.afterBlobSize.set(cut, () => rm(blobPath(root, cut)));
    const report = await verifyStore(root, { files });
    expect(report.unindexed).toStrictEqual([{ digest: cut, path, size: 20 }]);
    expect(report.problems).toStrictEqual([
      {
        kind: 'unreadable',
        message: `blob ${cut}: cannot read: ENOENT: no such file or directory, open '${blobPath(root, cut)}'`,
      },
    ]);
  });

  it('takes an upload session closed (row and file) between the listing and its check for no problem', async () => {
    const files = new ChangingFiles(root);
    files.beforeUploadSize.set(image.uploadId, async () => {
      editIndex(root, (db) => db.prepare('DELETE FROM uploads WHERE id = ?').run(image.uploadId));
      await rm(join(root, 'tmp', 'uploads', image.uploadId));
    });
    const report = await verifyStore(root, { files });
    expect(report.problems).toStrictEqual([]);
    expect(report.uploads).toStrictEqual({ sessions: 1, filesWithoutSession: 0 });
  });
});
