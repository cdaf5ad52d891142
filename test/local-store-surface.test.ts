/**
 * The rest of LocalStore's surface in process (store/local-store.ts): the defaults `open` applies
 * (upload ages, the manifest cache, reads not recorded), the options it takes, reads recorded and
 * written by flushAccessTimes and close (never by a read-only store), gc's dry run over abandoned
 * upload sessions, the small calls the CLI and the mirror use (hasBlob, linkBlob, mountBlob,
 * openContentFile, listImages, openReadOnly), readiness when the data directory takes no write,
 * and the scrub it creates. Real temp dirs and SQLite. Written for the survivors and unreached
 * mutants of the index scope's mutation run (docs/mutation-testing.md).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { isOciError } from '../src/oci/errors.js';
import type { Logger } from '../src/oci/logger.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { LocalStore, type LocalStoreOptions } from '../src/store/local-store.js';
import type { QuarantineResult } from '../src/store/quarantine.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { content, imageManifest, ociTypes, once, type Content } from './support/store-content.js';

const name = requireRepoName('surface/app');

let root: string;
let store: LocalStore | undefined;
async function openStore(options: LocalStoreOptions = {}): Promise<LocalStore> {
  store?.close();
  store = await LocalStore.open(root, options);
  return store;
}
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-store-surface-'));
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function pushBlob(target: LocalStore, item: Content, repository = name): Promise<void> {
  await target.putBlob(repository, item.digest, once(item.bytes), item.size);
}

/** `blobs.accessed_at` of each digest, read through a connection of its own. */
function accessedAt(...digests: Digest[]): (number | null)[] {
  const db = new Database(join(root, 'index.db'), { readonly: true });
  try {
    const row = db.prepare<[string], { accessed_at: number | null }>('SELECT accessed_at FROM blobs WHERE digest = ?');
    return digests.map((digest) => row.get(digest)?.accessed_at ?? null);
  } finally {
    db.close();
  }
}

const config = content('{}');

describe('what LocalStore.open applies by default', () => {
  it('keeps an upload session for a day, and an empty one for ten minutes', async () => {
    let s = await openStore();
    const sessions: Record<string, { id: string; idleMs: number }> = {};
    const minute = 60_000;
    const day = 24 * 60 * minute;
    for (const [label, bytes, idleMs] of [
      ['written, a minute short of a day', 1, day - minute],
      ['written, a minute past a day', 1, day + minute],
      ['empty, nine minutes', 0, 9 * minute],
      ['empty, eleven minutes', 0, 11 * minute],
    ] as const) {
      const session = await s.startUpload(name);
      if (bytes > 0) await s.appendUpload(name, session.id, once(Buffer.from('a')));
      sessions[label] = { id: session.id, idleMs };
    }
    s.close();
    store = undefined;
    // Each session last written idleMs ago, as the index records it.
    const db = new Database(join(root, 'index.db'));
    try {
      const now = Date.now();
      const age = db.prepare('UPDATE uploads SET updated_at = ? WHERE id = ?');
      for (const { id, idleMs } of Object.values(sessions)) age.run(now - idleMs, id);
    } finally {
      db.close();
    }
    // Opening cleans expired sessions.
    s = await openStore();
    const kept: Record<string, number | undefined> = {};
    for (const [label, { id }] of Object.entries(sessions)) kept[label] = (await s.getUpload(name, id))?.size;
    expect(kept).toEqual({
      'written, a minute short of a day': 1,
      'written, a minute past a day': undefined,
      'empty, nine minutes': 0,
      'empty, eleven minutes': undefined,
    });
  });

  it('serves a manifest read once from memory', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m = imageManifest(config, []);
    await s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest);
    expect((await s.getManifest(name, 'v1' as Tag))?.bytes).toEqual(m.bytes);
    // Gone from disk behind the store's back: the second read does not go there.
    await rm(blobPath(root, m.digest));
    expect((await s.getManifest(name, 'v1' as Tag))?.bytes).toEqual(m.bytes);
  });

  it('records no reads (the CLI reads for itself, not for a client)', async () => {
    const s = await openStore();
    const blob = content('read me');
    await pushBlob(s, blob);
    expect(await s.openBlob(name, blob.digest)).toBeDefined();
    s.close();
    store = undefined;
    expect(accessedAt(blob.digest)).toEqual([null]);
  });
});

describe('the options LocalStore.open takes', () => {
  it('caps the sessions of one client at uploadLimits.maxSessionsPerClient', async () => {
    const s = await openStore({ uploadLimits: { maxSessionsPerClient: 2 } });
    await s.startUpload(name, '10.0.0.1');
    await s.startUpload(name, '10.0.0.1');
    const third = await s.startUpload(name, '10.0.0.1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOciError(third) ? third.code : third).toBe('TOOMANYREQUESTS');
    expect((await s.startUpload(name, '10.0.0.2')).id).toEqual(expect.any(String));
  });

  it('removes a session that received no byte after uploadEmptyMaxAgeMs', async () => {
    const s = await openStore({ uploadEmptyMaxAgeMs: 10 });
    const empty = await s.startUpload(name);
    await sleep(50);
    expect(await s.cleanUploads()).toBe(1);
    expect(await s.getUpload(name, empty.id)).toBeUndefined();
  });
});

describe('reads recorded', () => {
  it('are written by flushAccessTimes and by close', async () => {
    let s = await openStore({ recordReads: true });
    const first = content('first');
    const second = content('second');
    await pushBlob(s, first);
    expect(await s.openBlob(name, first.digest)).toBeDefined();
    s.flushAccessTimes();
    const [firstAt] = accessedAt(first.digest);
    expect(firstAt).toEqual(expect.any(Number));
    await pushBlob(s, second);
    expect(accessedAt(second.digest)).toEqual([null]);
    s.close();
    expect(accessedAt(second.digest)).toEqual([expect.any(Number)]);
    // Closed: the index is released.
    expect(() => s.hasBlob(first.digest)).toThrow(/not open/);
    s = await openStore();
    expect(s.hasBlob(first.digest)).toBe(true);
  });

  it('are never written by a read-only store (export beside a running serve)', async () => {
    const writer = await openStore();
    const blob = content('shared');
    await pushBlob(writer, blob);
    const m = imageManifest(config, []);
    await pushBlob(writer, config);
    await writer.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest);
    writer.close();
    store = undefined;

    const reader = LocalStore.openReadOnly(root, { recordReads: true });
    try {
      expect((await reader.getManifest(name, 'v1' as Tag))?.digest).toBe(m.digest);
      expect(await reader.openBlob(name, blob.digest)).toBeDefined();
      expect(() => reader.flushAccessTimes()).not.toThrow();
    } finally {
      expect(() => reader.close()).not.toThrow();
    }
    expect(accessedAt(blob.digest, m.digest)).toEqual([null, null]);
  });
});

describe('gc and abandoned upload sessions', () => {
  it('lists them on a dry run and removes none; removes them otherwise', async () => {
    const s = await openStore({ uploadEmptyMaxAgeMs: 1 });
    const idle = await s.startUpload(name);
    await sleep(20);
    const dry = await s.gc({ graceMs: 0, dryRun: true });
    expect(dry.uploads).toEqual([{ id: idle.id, size: 0 }]);
    expect(await s.getUpload(name, idle.id)).toBeDefined();
    const real = await s.gc({ graceMs: 0 });
    expect(real.uploads).toEqual([{ id: idle.id, size: 0 }]);
    expect(await s.getUpload(name, idle.id)).toBeUndefined();
  });
});

describe('the small calls', () => {
  it('hasBlob, linkBlob, mountBlob and openContentFile', async () => {
    const s = await openStore();
    const blob = content('linked bytes');
    await pushBlob(s, blob);
    expect(s.hasBlob(blob.digest)).toBe(true);
    expect(s.hasBlob(content('absent').digest)).toBe(false);

    const linked = requireRepoName('surface/linked');
    expect(await s.statBlob(linked, blob.digest)).toBeUndefined();
    s.linkBlob(linked, blob.digest);
    expect(await s.statBlob(linked, blob.digest)).toEqual({ digest: blob.digest, size: blob.size });

    const mounted = requireRepoName('surface/mounted');
    expect(await s.mountBlob(mounted, blob.digest, () => false)).toBeUndefined();
    expect(await s.mountBlob(mounted, blob.digest, requireRepoName('surface/nobody'))).toBeUndefined();
    expect(await s.statBlob(mounted, blob.digest)).toBeUndefined();
    expect(await s.mountBlob(mounted, blob.digest, (candidate) => candidate === linked)).toEqual({
      digest: blob.digest,
      size: blob.size,
    });
    expect(await s.statBlob(mounted, blob.digest)).toEqual({ digest: blob.digest, size: blob.size });

    const file = await s.openContentFile(blob.digest);
    try {
      const buffer = Buffer.alloc(blob.size);
      expect(await file.read(buffer, 0)).toBe(blob.size);
      expect(buffer).toEqual(blob.bytes);
    } finally {
      await file.close();
    }
  });

  it('listImages lists every repository when given no filter', async () => {
    const s = await openStore();
    const m = imageManifest(config, []);
    for (const repository of [name, requireRepoName('surface/other')]) {
      await pushBlob(s, config, repository);
      await s.putManifest(repository, 'v1' as Tag, m.bytes, ociTypes.manifest);
    }
    const listed = await s.listImages();
    expect(listed.map((image) => [image.repository, image.tag, image.digest]).sort()).toEqual([
      [name, 'v1', m.digest],
      ['surface/other', 'v1', m.digest],
    ]);
  });
});

describe('readiness', () => {
  it('says the data directory is not writable when tmp/ takes no file', async () => {
    const s = await openStore();
    expect(await s.health.notReadyReason()).toBeUndefined();
    await rm(join(root, 'tmp'), { recursive: true });
    await writeFile(join(root, 'tmp'), 'not a directory');
    expect(await s.health.notReadyReason()).toBe('the data directory is not writable: ENOTDIR');
  });
});

describe('the scrub a store creates', () => {
  it('quarantines a corrupt blob as found by the scrub, and logs one it cannot check', async () => {
    const quarantined: QuarantineResult[] = [];
    const s = await openStore({ onQuarantine: (result) => quarantined.push(result) });
    const corrupt = content('bytes to flip');
    let unreadable = content('unreadable 0');
    for (let i = 1; unreadable.digest.slice(7, 9) === corrupt.digest.slice(7, 9); i++) {
      unreadable = content(`unreadable ${i}`);
    }
    await pushBlob(s, corrupt);
    await pushBlob(s, unreadable);
    await flipByte(blobPath(root, corrupt.digest), 0);
    // Its prefix directory made a plain file: opening the blob fails with ENOTDIR, not ENOENT.
    const prefix = dirname(blobPath(root, unreadable.digest));
    await rm(prefix, { recursive: true });
    await writeFile(prefix, 'not a directory');

    const warned: { obj: object; msg: string | undefined }[] = [];
    const logger: Logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (obj, msg) => warned.push({ obj, msg }),
      error: () => undefined,
    };
    // Rows created in this millisecond are not due yet (created_at < now).
    await sleep(5);
    const scrub = s.createScrub({ rateBytes: 1024 * 1024, intervalMs: 0 }, logger);
    try {
      await scrub.tick(1000);
    } finally {
      await scrub.close();
    }
    expect(quarantined).toEqual([
      expect.objectContaining({ digest: corrupt.digest, reason: 'digest-mismatch', foundBy: 'scrub' }),
    ]);
    expect(warned).toEqual([
      {
        obj: expect.objectContaining({ digest: unreadable.digest }) as object,
        msg: 'scrub: could not check this blob; moving on',
      },
    ]);
  });
});
