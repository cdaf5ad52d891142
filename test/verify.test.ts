/**
 * `wharf verify` on real stores: a consistent one verifies clean; each kind of
 * damage (a flipped byte, a missing or cut file, a stray file, a broken index
 * reference, a lost upload file) is one `error:` line and exit 1; what a crash
 * may leave (an unindexed file, a temp file) is reported and exits 0.
 */
import { appendFile, mkdir, mkdtemp, open, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { verifyStore } from '../src/store/verify.js';
import { sha256 } from './support/http.js';
import { seedStore, type SeededStore } from './support/seeded-store.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf } from './support/wharf.js';

let root: string;
let name: string;
let image: SeededStore;

function blobPath(digest: Digest): string {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return join(root, 'blobs', algorithm, hex.slice(0, 2), hex);
}

function verifyCli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWharf(['verify', '--data', root, ...args]);
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-verify-'));
  image = await seedStore(root);
  name = image.name;
});
afterEach(async () => rm(root, { recursive: true, force: true }));

describe('wharf verify', () => {
  it('verifies a consistent store clean, hashing every byte', async () => {
    const report = await verifyStore(root);
    expect(report.problems).toEqual([]);
    expect(report.blobs.rows).toBe(3);
    expect(report.blobs.hashedBytes).toBe(report.blobs.bytes);
    expect(report.index).toMatchObject({ manifests: 1, tags: 1, links: 2 });
    expect(report.uploads).toEqual({ sessions: 1, filesWithoutSession: 0 });
    expect(report.unindexed).toEqual([]);

    const cli = await verifyCli();
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('blobs: 3 rows');
    expect(cli.stdout).toMatch(/^result: consistent/m);
    expect((await verifyCli('--quick')).code).toBe(0);
  });

  it('reports a flipped byte as a digest mismatch (exit 1); --quick, checking sizes only, cannot see it', async () => {
    const handle = await open(blobPath(image.layer), 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 5000);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 5000);
    await handle.close();

    const report = await verifyStore(root);
    expect(report.problems.map((p) => p.kind)).toEqual(['digest-mismatch']);
    expect(report.problems[0]?.message).toContain(`blob ${image.layer}: file content hashes to`);
    const cli = await verifyCli();
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^error: blob sha256:\w+: file content/)]);
    expect(cli.stdout).toMatch(/^result: 1 problem$/m);
    expect((await verifyCli('--quick')).code).toBe(0);
  });

  it('reports a missing file and a cut file (exit 1, --quick too)', async () => {
    await rm(blobPath(image.config));
    await truncate(blobPath(image.layer), 10);
    const report = await verifyStore(root, { quick: true });
    expect(report.problems.map((p) => p.kind).sort()).toEqual(['missing-file', 'size-mismatch']);
    const cli = await verifyCli('--quick');
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain(`error: blob ${image.config}: file`);
    expect(cli.stderr).toContain(`error: blob ${image.layer}: file is 10 bytes, the index says 100000`);
    expect(cli.stderr.trim().split('\n')).toHaveLength(2);
  });

  it('reports a file with no index row as unindexed, not as corruption (exit 0), unless its bytes are wrong', async () => {
    const orphan = Buffer.from('renamed into place, then the process died before the index insert');
    const digest = requireDigest(sha256(orphan));
    await mkdir(join(blobPath(digest), '..'), { recursive: true });
    await writeFile(blobPath(digest), orphan);
    const report = await verifyStore(root);
    expect(report.problems).toEqual([]);
    expect(report.unindexed).toEqual([
      { digest, path: `blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`, size: orphan.length },
    ]);
    const cli = await verifyCli();
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`unindexed: ${digest}`);

    await appendFile(blobPath(digest), 'x');
    expect((await verifyStore(root)).problems.map((p) => p.kind)).toEqual(['digest-mismatch']);
  });

  it('reports a temp file older than the run without failing (a crash leaves them; start removes them)', async () => {
    await writeFile(join(root, 'tmp', 'left.part'), 'partial');
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(join(root, 'tmp', 'left.part'), hourAgo, hourAgo);
    const cli = await verifyCli();
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^temp: 1 \.part file older than this run/m);
    expect(cli.stdout).toContain('temp: tmp/left.part, 7 bytes');
  });

  it('reports files wharf never writes under blobs/', async () => {
    await writeFile(join(root, 'blobs', 'sha256', 'notes.txt'), 'x');
    await mkdir(join(root, 'blobs', 'sha256', 'ff'), { recursive: true });
    // Named by a digest but filed under the wrong two-character directory.
    await writeFile(join(root, 'blobs', 'sha256', 'ff', image.config.slice(7)), 'x');
    const report = await verifyStore(root);
    expect(report.problems.map((p) => p.kind)).toEqual(['unexpected-file', 'unexpected-file']);
  });

  it('reports index rows that point nowhere (written with foreign keys off)', async () => {
    const db = new Database(join(root, 'index.db'));
    db.pragma('foreign_keys = OFF');
    const missing = sha256('never stored');
    db.prepare(
      `INSERT INTO tags (repository_id, name, digest, source, updated_at) SELECT id, 'ghost', ?, 'pushed', 0
       FROM repositories WHERE name = ?`,
    ).run(missing, name);
    db.prepare(
      `INSERT INTO repository_blobs (repository_id, digest, created_at) SELECT id, ?, 0 FROM repositories`,
    ).run(missing);
    db.prepare('DELETE FROM blobs WHERE digest = ?').run(image.manifest);
    db.close();
    const messages = (await verifyStore(root)).problems.map((p) => `${p.kind}: ${p.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        `broken-reference: manifest ${image.manifest} in ${name}: no blob row for its bytes`,
        `broken-reference: tag ${name}:ghost points at ${missing}, not a manifest there`,
        `broken-reference: link ${name} → ${missing}: no blob row`,
      ]),
    );
    // The manifest's file is still there but has lost its row: unindexed, not a second problem.
    expect(messages).toHaveLength(3);
  });

  it('reports an upload session whose file lost committed bytes', async () => {
    await truncate(join(root, 'tmp', 'uploads', image.uploadId), 3);
    const cli = await verifyCli();
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim()).toBe(
      `error: upload ${image.uploadId}: tmp/uploads/${image.uploadId} holds 3 bytes, 11 committed`,
    );
  });

  it('runs beside a serving wharf, read-only', async () => {
    const wharf = await startWharf({ dataDir: root });
    try {
      const cli = await verifyCli();
      expect(cli.stderr).toBe('');
      expect(cli.code).toBe(0);
      const manifest = await fetch(`${wharf.url}/v2/${name}/manifests/v1`, { signal: AbortSignal.timeout(10_000) });
      expect(manifest.status).toBe(200);
    } finally {
      await wharf.close();
    }
  });

  it('fails with one line when there is no store', async () => {
    const cli = await runWharf(['verify', '--data', join(root, 'nothing-here')]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toBe(
      `error: STORE_NOT_FOUND: no wharf store at ${join(root, 'nothing-here')}: index.db not found\n`,
    );
  });
});
