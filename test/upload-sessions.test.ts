/**
 * Upload sessions in process (store/uploads.ts, store/upload-quota.ts): the counts behind the
 * 429s (sessions still starting, one client's slots given back one at a time, a slot settled
 * twice), the exact refusals of a chunk out of order, a chunk unlike its Content-Range, a second
 * writer and an unknown session; what clean, cancel and a restart remove or cut back (never a
 * session a request is writing to); and store.maxSize counting a pushed blob once. Real temp dirs
 * and SQLite. Written for the survivors of the content scope's mutation run
 * (docs/mutation-testing.md); each asserts the exact answer.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { isOciError, type OciError } from '../src/oci/errors.js';
import { requireRepoName } from '../src/oci/reference.js';
import { LocalStore, type LocalStoreOptions } from '../src/store/local-store.js';
import { UploadQuota } from '../src/store/upload-quota.js';
import { withDeadline } from './support/run.js';

const name = requireRepoName('sessions/app');
const deadlineMs = 20_000;

const digestOf = (bytes: Buffer | string): Digest =>
  requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

async function refusal(run: () => Promise<unknown>): Promise<OciError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOciError(error)) throw new Error(`expected an OciError, got ${String(error)}`);
  return error;
}

function describeRefusal(error: OciError | undefined): unknown {
  return error === undefined
    ? undefined
    : { code: error.code, status: error.status, message: error.message, headers: error.headers };
}

async function* once(bytes: Buffer | string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(bytes);
}

/** A body that sends `first`, then waits for release() before it ends. */
function heldBody(first: string): { body: AsyncGenerator<Uint8Array>; sent: Promise<void>; release(): void } {
  let sent = (): void => undefined;
  let release = (): void => undefined;
  const sentPromise = new Promise<void>((resolve) => (sent = resolve));
  const gate = new Promise<void>((resolve) => (release = resolve));
  async function* body(): AsyncGenerator<Uint8Array> {
    yield Buffer.from(first);
    sent();
    await gate;
  }
  return { body: body(), sent: sentPromise, release: () => release() };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('UploadQuota', () => {
  const tooManyHeaders = { 'Retry-After': '60' };

  it('counts sessions still starting against the total, and names the cap', () => {
    const quota = new UploadQuota({ maxSessions: 2, maxSessionsPerClient: 5 });
    expect(quota.refusal(1, undefined)).toBeUndefined();
    quota.reserve(undefined);
    expect(describeRefusal(quota.refusal(1, undefined))).toEqual({
      code: 'TOOMANYREQUESTS',
      status: 429,
      message: 'too many open upload sessions (2); retry later',
      headers: tooManyHeaders,
    });
  });

  it("gives a client's slots back one at a time, and names the per-client cap", () => {
    const quota = new UploadQuota({ maxSessions: 100, maxSessionsPerClient: 3 });
    for (const id of ['a1', 'a2', 'a3']) quota.reserve('10.0.0.1').opened(id);
    const full = {
      code: 'TOOMANYREQUESTS',
      status: 429,
      message: 'this client has 3 open upload sessions; finish or cancel some first',
      headers: tooManyHeaders,
    };
    expect(describeRefusal(quota.refusal(0, '10.0.0.1'))).toEqual(full);
    expect(quota.refusal(0, '10.0.0.2')).toBeUndefined();
    quota.release('a1');
    expect(quota.refusal(0, '10.0.0.1')).toBeUndefined();
    quota.reserve('10.0.0.1').opened('a4');
    expect(describeRefusal(quota.refusal(0, '10.0.0.1'))).toEqual(full);
  });

  it('counts a slot settled twice once', () => {
    const quota = new UploadQuota({ maxSessions: 2, maxSessionsPerClient: 5 });
    const slot = quota.reserve(undefined);
    slot.abandon();
    slot.abandon();
    expect(quota.refusal(1, undefined)).toBeUndefined();
    expect(quota.refusal(2, undefined)?.code).toBe('TOOMANYREQUESTS');
    const opened = quota.reserve(undefined);
    opened.opened('x');
    opened.opened('x');
    expect(quota.refusal(2, undefined)?.code).toBe('TOOMANYREQUESTS');
  });

  it('keeps nothing in memory for sessions released, nor for sessions with no client address', () => {
    const quota = new UploadQuota({ maxSessions: 100, maxSessionsPerClient: 3 });
    quota.reserve(undefined).opened('in-process');
    quota.reserve('10.0.0.1').opened('p1');
    quota.reserve('10.0.0.1').opened('p2');
    quota.reserve('10.0.0.2').abandon();
    expect(quota.tracked).toEqual({ owners: 2, clients: 1 });
    quota.release('p1');
    expect(quota.tracked).toEqual({ owners: 1, clients: 1 });
    quota.release('p2');
    quota.release('in-process');
    quota.release('never-opened');
    expect(quota.tracked).toEqual({ owners: 0, clients: 0 });
  });
});

describe('upload sessions in a store', () => {
  let root: string;
  let store: LocalStore | undefined;
  async function openStore(options: LocalStoreOptions = {}): Promise<LocalStore> {
    store = await LocalStore.open(root, options);
    return store;
  }
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-upload-sessions-'));
  });
  afterEach(async () => {
    store?.close();
    store = undefined;
    await rm(root, { recursive: true, force: true });
  });
  const uploadFile = (id: string): string => join(root, 'tmp', 'uploads', id);

  it('refuses a chunk that does not start at the end of the upload: 416 with the Range it has', async () => {
    const s = await openStore();
    const { id } = await s.startUpload(name);
    expect(await s.appendUpload(name, id, once('abc'))).toEqual({ id, name, size: 3 });
    const error = await refusal(() => s.appendUpload(name, id, once('xyz'), { start: 5, end: 7 }));
    expect(describeRefusal(error)).toEqual({
      code: 'BLOB_UPLOAD_INVALID',
      status: 416,
      message: 'chunk starts at 5, upload has 3 bytes',
      headers: { Range: '0-2' },
    });
    expect(await s.getUpload(name, id)).toEqual({ id, name, size: 3 });
  });

  it('refuses a chunk whose body is not what its Content-Range names, and cuts the file back', async () => {
    const s = await openStore();
    const { id } = await s.startUpload(name);
    await s.appendUpload(name, id, once('abc'), { start: 0, end: 2 });
    const error = await refusal(() => s.appendUpload(name, id, once('defg'), { start: 3, end: 12 }));
    expect(describeRefusal(error)).toEqual({
      code: 'SIZE_INVALID',
      status: 416,
      message: 'Content-Range names 10 bytes, body had 4',
      headers: { Range: '0-2' },
    });
    expect(await readFile(uploadFile(id), 'utf8')).toBe('abc');
    expect(await s.getUpload(name, id)).toEqual({ id, name, size: 3 });
    expect(await s.finishUpload(name, id, digestOf('abcdef'), once('def'), { start: 3, end: 5 })).toEqual({
      digest: digestOf('abcdef'),
      size: 6,
    });
  });

  it('refuses a second request on a session being written with 409; the first one completes', async () => {
    const s = await openStore();
    const { id } = await s.startUpload(name);
    const held = heldBody('abc');
    const first = s.appendUpload(name, id, held.body);
    await withDeadline(held.sent, deadlineMs, 'the first PATCH sending its bytes');
    for (const second of [() => s.appendUpload(name, id, once('x')), () => s.finishUpload(name, id, digestOf('abc'))]) {
      const error = await refusal(second);
      expect(describeRefusal(error)).toEqual({
        code: 'BLOB_UPLOAD_INVALID',
        status: 409,
        message: 'another request is writing to this upload',
        headers: {},
      });
    }
    held.release();
    expect(await withDeadline(first, deadlineMs, 'the first PATCH')).toEqual({ id, name, size: 3 });
  });

  it('answers a session it does not know with BLOB_UPLOAD_UNKNOWN naming the id', async () => {
    const s = await openStore();
    const { id } = await s.startUpload(name);
    for (const [repository, session] of [
      [name, 'no-such-session'],
      [requireRepoName('sessions/other'), id],
    ] as const) {
      for (const call of [
        () => s.appendUpload(repository, session, once('x')),
        () => s.finishUpload(repository, session, digestOf('x'), once('x')),
      ]) {
        const error = await refusal(call);
        expect([error.code, error.status, error.message, error.detail]).toEqual([
          'BLOB_UPLOAD_UNKNOWN',
          404,
          'blob upload unknown to registry',
          { id: session },
        ]);
      }
    }
    expect(await s.getUpload(name, id)).toEqual({ id, name, size: 0 });
  });

  it("cancels only a session of that repository; a cancelled session's missing file is no error", async () => {
    const s = await openStore();
    const { id } = await s.startUpload(name);
    expect(await s.cancelUpload(requireRepoName('sessions/other'), id)).toBe(false);
    expect(await s.cancelUpload(name, 'no-such-session')).toBe(false);
    expect(await s.getUpload(name, id)).toEqual({ id, name, size: 0 });
    expect(await readdir(join(root, 'tmp', 'uploads'))).toEqual([id]);

    await rm(uploadFile(id));
    expect(await s.cancelUpload(name, id)).toBe(true);
    expect(await s.getUpload(name, id)).toBeUndefined();
  });

  it('clean removes expired sessions and files without a session, and counts them', async () => {
    const s = await openStore({ uploadMaxAgeMs: 50 });
    const old = await s.startUpload(name);
    await s.appendUpload(name, old.id, once('stale'));
    await writeFile(uploadFile('no-session'), 'left by a crash');
    await sleep(120);
    expect(await s.cleanUploads()).toBe(2);
    expect(await readdir(join(root, 'tmp', 'uploads'))).toEqual([]);
    expect(await s.getUpload(name, old.id)).toBeUndefined();
    expect(await s.cleanUploads()).toBe(0);
  });

  it('a POST with room left does not sweep; one that meets the cap removes what expired first', async () => {
    const s = await openStore({ uploadMaxAgeMs: 100, uploadLimits: { maxSessions: 2 } });
    const old = await s.startUpload(name);
    await sleep(200);
    await s.startUpload(name);
    // Expired, but only the next clean (or a POST that finds no room) removes it.
    expect(await s.getUpload(name, old.id)).toEqual({ id: old.id, name, size: 0 });
    const third = await s.startUpload(name);
    expect(await s.getUpload(name, old.id)).toBeUndefined();
    expect(await s.getUpload(name, third.id)).toEqual({ id: third.id, name, size: 0 });
  });

  it('never expires a session while a request is writing to it', async () => {
    const s = await openStore({ uploadMaxAgeMs: 1 });
    const { id } = await s.startUpload(name);
    const held = heldBody('abc');
    const writing = s.appendUpload(name, id, held.body);
    await withDeadline(held.sent, deadlineMs, 'the PATCH sending its bytes');
    await sleep(20);
    expect(await s.cleanUploads()).toBe(0);
    held.release();
    expect(await withDeadline(writing, deadlineMs, 'the PATCH')).toEqual({ id, name, size: 3 });
    expect(await readFile(uploadFile(id), 'utf8')).toBe('abc');
  });

  it('at start-up, cuts upload files back to their committed length and ends sessions whose file is gone', async () => {
    let s = await openStore();
    const kept = await s.startUpload(name);
    await s.appendUpload(name, kept.id, once('abc'));
    const lost = await s.startUpload(name);
    await s.appendUpload(name, lost.id, once('x'));
    s.close();
    store = undefined;
    // A crash mid-PATCH: bytes past the committed length; and a session whose closing PUT had
    // moved its file into blobs/ when the process died.
    await appendFile(uploadFile(kept.id), 'XYZ');
    await rm(uploadFile(lost.id));

    s = await openStore();
    expect((await stat(uploadFile(kept.id))).size).toBe(3);
    expect(await s.getUpload(name, lost.id)).toBeUndefined();
    expect(await s.finishUpload(name, kept.id, digestOf('abcdef'), once('def'))).toEqual({
      digest: digestOf('abcdef'),
      size: 6,
    });
  });

  it('counts a pushed blob against store.maxSize once: a blob it has already costs nothing', async () => {
    const s = await openStore({ lifecycle: { space: { maxBytes: 100, lowWaterBytes: 50 } } });
    const push = async (bytes: Buffer): Promise<unknown> => {
      const { id } = await s.startUpload(name);
      return s.finishUpload(name, id, digestOf(bytes), once(bytes));
    };
    const a = Buffer.alloc(60, 'a');
    expect(await push(a)).toEqual({ digest: digestOf(a), size: 60 });
    // The same blob again adds no byte.
    expect(await push(a)).toEqual({ digest: digestOf(a), size: 60 });
    const b = Buffer.alloc(50, 'b');
    const error = await refusal(() => push(b));
    expect([error.code, error.status, error.detail]).toEqual([
      'UNAVAILABLE',
      507,
      { size: 50, maxSize: 100, used: 60 },
    ]);
    // Exactly up to the limit: the earlier pushes' reservations were given back.
    const c = Buffer.alloc(40, 'c');
    expect(await push(c)).toEqual({ digest: digestOf(c), size: 40 });
    expect(await readdir(join(root, 'tmp', 'uploads'))).toEqual([]);
  });

  it('gc names the abandoned sessions with their sizes: past uploads.maxAge, or empty past the empty age; never a busy or fresh one', async () => {
    const s = await openStore({ uploadMaxAgeMs: 3_000, uploadEmptyMaxAgeMs: 1_000 });
    const full = await s.startUpload(name);
    await s.appendUpload(name, full.id, once('stale'));
    await sleep(2_000);
    const emptyOld = await s.startUpload(name);
    const partial = await s.startUpload(name);
    await s.appendUpload(name, partial.id, once('abc'));
    const busy = await s.startUpload(name);
    await sleep(1_500);
    // full: 3.5 s old with 5 bytes; emptyOld: 1.5 s old and empty; partial: 1.5 s old with 3 bytes (kept);
    // busy: as old as emptyOld and empty, but a request is writing to it.
    const held = heldBody('x');
    const writing = s.appendUpload(name, busy.id, held.body);
    await withDeadline(held.sent, deadlineMs, 'the PATCH sending its bytes');
    const fresh = await s.startUpload(name);
    const report = await s.gc({ graceMs: 0, dryRun: true });
    const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id);
    expect([...report.uploads].sort(byId)).toEqual(
      [
        { id: full.id, size: 5 },
        { id: emptyOld.id, size: 0 },
      ].sort(byId),
    );
    held.release();
    await withDeadline(writing, deadlineMs, 'the PATCH');
    for (const id of [full.id, emptyOld.id, partial.id, busy.id, fresh.id]) {
      expect(await s.getUpload(name, id), id).toBeDefined();
    }
  });

  it('a session whose file cannot be created is refused with that error, and gives its slot back', async () => {
    const s = await openStore({ uploadLimits: { maxSessions: 1 } });
    await rm(join(root, 'tmp', 'uploads'), { recursive: true });
    await expect(s.startUpload(name)).rejects.toMatchObject({ code: 'ENOENT' });
    await mkdir(join(root, 'tmp', 'uploads'));
    const { id } = await s.startUpload(name);
    expect(await readdir(join(root, 'tmp', 'uploads'))).toEqual([id]);
  });

  it('at start-up, keeps a session whose file cannot be cut back for a reason other than "gone"', async () => {
    let s = await openStore();
    const { id } = await s.startUpload(name);
    await s.appendUpload(name, id, once('abc'));
    s.close();
    store = undefined;
    // A directory where the upload file was: opening it to truncate fails with EISDIR, not ENOENT.
    await rm(uploadFile(id));
    await mkdir(uploadFile(id));
    s = await openStore();
    expect(await s.getUpload(name, id)).toEqual({ id, name, size: 3 });
  });

  it('a chunk whose body fails midway is refused with that error; the upload keeps its committed bytes', async () => {
    const s = await openStore();
    const { id } = await s.startUpload(name);
    await s.appendUpload(name, id, once('abc'));
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('def');
      throw new Error('the client went away');
    }
    await expect(s.appendUpload(name, id, failing())).rejects.toThrow('the client went away');
    expect(await s.getUpload(name, id)).toEqual({ id, name, size: 3 });
    expect(await readFile(uploadFile(id), 'utf8')).toBe('abc');
  });
});
