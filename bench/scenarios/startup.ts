/**
 * @module bench/scenarios/startup
 * Scenario 7: spawn → first 200 on GET /v2/. wharf over an index of 10,000 images (rows generated
 * straight into index.db after a first start ran the migrations; no blob files behind them, which
 * /v2/ never reads), wharf over an empty store, and distribution over an empty store.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { log, startMirror, type BenchContext, type MirrorKind } from '../context.js';
import { samples, type Row } from '../report.js';
import { mirroredHost, type Server } from '../servers.js';

function fakeDigest(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** Per image: a repository, its manifest, config and layer blobs, links, references and tag v1. */
export function seedIndex(dataDir: string, images: number): void {
  const db = new Database(join(dataDir, 'index.db'));
  try {
    db.pragma('foreign_keys = ON');
    const now = Date.now();
    const repo = db.prepare('INSERT INTO repositories (name, created_at) VALUES (?, ?)');
    const blob = db.prepare('INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)');
    const link = db.prepare('INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)');
    const manifest = db.prepare(
      'INSERT INTO manifests (repository_id, digest, media_type, size, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    const ref = db.prepare('INSERT INTO manifest_references (repository_id, manifest_digest, digest) VALUES (?, ?, ?)');
    const tag = db.prepare(
      "INSERT INTO tags (repository_id, name, digest, source, updated_at, confirmed_at) VALUES (?, 'v1', ?, 'fetched', ?, ?)",
    );
    db.transaction(() => {
      for (let i = 0; i < images; i++) {
        const id = Number(repo.run(`${mirroredHost}/bench/startup-${i}`, now).lastInsertRowid);
        const m = fakeDigest(`manifest-${i}`);
        const c = fakeDigest(`config-${i}`);
        const l = fakeDigest(`layer-${i}`);
        blob.run(m, 400, now);
        blob.run(c, 300, now);
        blob.run(l, 10_000_000, now);
        link.run(id, c, now);
        link.run(id, l, now);
        manifest.run(id, m, 'application/vnd.oci.image.manifest.v1+json', 400, now);
        ref.run(id, m, c);
        ref.run(id, m, l);
        tag.run(id, m, now, now);
      }
    })();
  } finally {
    db.close();
  }
}

async function timeStarts(ctx: BenchContext, kind: MirrorKind, template: Server | undefined): Promise<number[]> {
  const ms: number[] = [];
  for (let run = 0; run < ctx.config.runs; run++) {
    const server = await startMirror(ctx, kind, template);
    ms.push(server.readyMs);
    await server.close({ removeData: template === undefined });
  }
  return ms;
}

export async function runStartup(ctx: BenchContext): Promise<Row[]> {
  // The first start creates index.db and runs the migrations; the rows go in while it is stopped.
  const seeded = await startMirror(ctx, 'wharf');
  await seeded.close();
  const seedStarted = performance.now();
  seedIndex(seeded.dataDir, ctx.config.startupImages);
  log(
    `seeded ${ctx.config.startupImages} images into index.db in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`,
  );
  try {
    const wharfSeeded = await timeStarts(ctx, 'wharf', seeded);
    const wharfEmpty = await timeStarts(ctx, 'wharf', undefined);
    const distributionEmpty = await timeStarts(ctx, 'distribution', undefined);
    log(`startup: wharf ${ctx.config.startupImages} images ${wharfSeeded.map((v) => v.toFixed(0)).join('/')} ms`);
    return [
      {
        scenario: `7. startup to first 200 on /v2/, wharf with ${ctx.config.startupImages.toLocaleString('en-US')} images; distribution with an empty store (ms)`,
        wharf: samples(wharfSeeded, 'ms', 0),
        distribution: samples(distributionEmpty, 'ms', 0),
        target: '—',
      },
      {
        scenario: '7. startup to first 200 on /v2/, both with an empty store (ms)',
        wharf: samples(wharfEmpty, 'ms', 0),
        distribution: samples(distributionEmpty, 'ms', 0),
        target: '—',
      },
    ];
  } finally {
    await seeded.close({ removeData: true });
  }
}
