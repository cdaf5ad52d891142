/**
 * The export writers' edges the archive-export Stryker scope showed untested (sixteenth wave): the
 * tar writer's docker manifest.json, its abort and the errors that stop it (the first error is the
 * one every later call gets); the folder writer's abort (a temp under way removed, nothing left of
 * a rename that failed, a file it replaced kept, a second abort, an abort before or after a refusal),
 * its size check and the handles it closes; a TempOutput whose temp name was taken. All in-process:
 * the real writers on a scratch folder or a Writable, their tar parsed by tar-stream.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeOutputFs, TempOutput, type OutputFs } from '../src/archive/durable-output.js';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import { OciLayoutWriter } from '../src/archive/oci-layout-writer.js';
import type { Digest } from '../src/oci/digest.js';
import { OciError } from '../src/oci/errors.js';
import type { RepoName } from '../src/oci/reference.js';
import { makeImage, sha256Digest, testSeed } from './support/make-image.js';
import { collector, rejectionOf, tarEntries, within, writeTestImage } from './support/writer-output.js';

const name = 'team/app' as RepoName;
let work: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-export-edges-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const blob = Buffer.from('sixteen bytes!!!');
const digest = sha256Digest(blob) as Digest;

describe('the tar writer', () => {
  it("writes docker's manifest.json, before index.json, for a single-platform image", async () => {
    const image = await makeImage({ seed: testSeed('export-edges-tar'), layers: 1 });
    const { out, bytes } = collector();
    const writer = new OciLayoutWriter(out);
    await writeTestImage(writer, image, name, 'v1');
    await within(writer.commit());
    const entries = await tarEntries(bytes());
    const names = entries.map((e) => e.name);
    expect(names.slice(-2)).toEqual(['manifest.json', 'index.json']);
    const manifest = JSON.parse(entries.at(-2)!.data.toString()) as Array<{ Config: string; RepoTags: string[] }>;
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.Config).toBe(`blobs/sha256/${image.images[0]!.config.digest.slice('sha256:'.length)}`);
    expect(manifest[0]!.RepoTags).toEqual(['team/app:v1']);
  });

  it('writes no manifest.json when no image was written', async () => {
    const { out, bytes } = collector();
    const writer = new OciLayoutWriter(out);
    await within(writer.commit());
    const entries = await tarEntries(bytes());
    expect(entries.map((e) => e.name)).toEqual(['oci-layout', 'index.json']);
  });

  it('after abort(error), every later call fails with that same error', async () => {
    const { out } = collector();
    const writer = new OciLayoutWriter(out);
    const cause = new Error('a later blob failed');
    await within(writer.abort(cause));
    expect(await rejectionOf(writer.writeBlob({ digest, size: blob.length }, [blob]))).toBe(cause);
    expect(await rejectionOf(writer.commit())).toBe(cause);
  });

  it("after abort() without a cause, later calls fail with 'aborted'", async () => {
    const { out } = collector();
    const writer = new OciLayoutWriter(out);
    await within(writer.abort());
    const error = await rejectionOf(writer.writeBlob({ digest, size: blob.length }, [blob]));
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('aborted');
  });

  it("a blob whose source broke: the source's error for it and for every later call", async () => {
    const { out } = collector();
    const writer = new OciLayoutWriter(out);
    const broke = new Error('the source broke');
    async function* body(): AsyncGenerator<Uint8Array> {
      yield blob.subarray(0, 4);
      throw broke;
    }
    expect(await rejectionOf(writer.writeBlob({ digest, size: blob.length }, body()))).toBe(broke);
    const other = Buffer.from('another blob');
    expect(await rejectionOf(writer.writeBlob({ digest: sha256Digest(other) as Digest, size: 12 }, [other]))).toBe(
      broke,
    );
    expect(await rejectionOf(writer.commit())).toBe(broke);
  });

  it('an output whose write throws: its error for the next blob and for commit(), no wait on a dead tar', async () => {
    // A Writable whose write throws emits no 'error': only the pump's rejection says the output is dead.
    const thrown = new Error('the output threw');
    const out = new Writable({
      write() {
        throw thrown;
      },
    });
    const writer = new OciLayoutWriter(out);
    const big = Buffer.alloc(1024 * 1024, 3);
    expect(await rejectionOf(writer.writeBlob({ digest: sha256Digest(big) as Digest, size: big.length }, [big]))).toBe(
      thrown,
    );
    expect(await rejectionOf(writer.commit())).toBe(thrown);
  });

  it("a blob whose source broke, the next one queued behind it: the source's error for both", async () => {
    const { out } = collector();
    const writer = new OciLayoutWriter(out);
    const broke = new Error('the source broke');
    async function* body(): AsyncGenerator<Uint8Array> {
      yield blob.subarray(0, 4);
      throw broke;
    }
    const other = Buffer.from('another blob');
    const first = rejectionOf(writer.writeBlob({ digest, size: blob.length }, body()));
    const second = rejectionOf(writer.writeBlob({ digest: sha256Digest(other) as Digest, size: 12 }, [other]));
    expect(await first).toBe(broke);
    expect(await second).toBe(broke);
  });

  it("a blob whose source broke while the output was full: the source's error for the blob queued next", async () => {
    // The output takes nothing until released: the pump waits on its 'drain', so only the writer's own
    // record of the failure can answer the next blob.
    const held: Array<() => void> = [];
    const out = new Writable({
      highWaterMark: 1,
      write(_chunk: Buffer, _encoding, done) {
        held.push(done);
      },
    });
    const writer = new OciLayoutWriter(out);
    const broke = new Error('the source broke');
    async function* body(): AsyncGenerator<Uint8Array> {
      yield blob.subarray(0, 4);
      throw broke;
    }
    const other = Buffer.from('another blob');
    const first = rejectionOf(writer.writeBlob({ digest, size: blob.length }, body()));
    const second = rejectionOf(writer.writeBlob({ digest: sha256Digest(other) as Digest, size: 12 }, [other]));
    expect(await first).toBe(broke);
    expect(await second).toBe(broke);
    for (const done of held.splice(0)) done();
    expect(await rejectionOf(writer.commit())).toBe(broke);
  });

  it('an output that fails while the next blob is asked for: its error for that blob', async () => {
    const { out } = collector();
    const writer = new OciLayoutWriter(out);
    await writer.writeBlob({ digest, size: blob.length }, [blob]);
    const gone = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    const other = Buffer.from('another blob');
    // The engine's next call, made as the output fails (this listener runs after the writer's).
    const next = new Promise<unknown>((resolve) =>
      out.once('error', () => {
        resolve(rejectionOf(writer.writeBlob({ digest: sha256Digest(other) as Digest, size: 12 }, [other])));
      }),
    );
    out.destroy(gone);
    expect(await within(next)).toBe(gone);
  });

  it('an output destroyed without an error between writes: commit() fails, it does not wait forever', async () => {
    // A destroy without an error emits only 'close': no 'error' for the writer to hear, no 'drain' ever.
    const { out } = collector();
    const writer = new OciLayoutWriter(out);
    await writer.writeBlob({ digest, size: blob.length }, [blob]);
    const closed = new Promise<void>((resolve) => out.on('close', () => resolve()));
    out.destroy();
    await within(closed);
    const error = await rejectionOf(writer.commit());
    expect((error as Error).message).toBe('the output was closed before the archive was written');
  });

  it('an output destroyed without an error while the tar waits for it to drain: commit() fails', async () => {
    const out = new Writable({
      highWaterMark: 1,
      write() {
        // Takes the first chunk and never asks for another.
      },
    });
    const writer = new OciLayoutWriter(out);
    const big = Buffer.alloc(64 * 1024, 5);
    const written = rejectionOf(writer.writeBlob({ digest: sha256Digest(big) as Digest, size: big.length }, [big]));
    await within(new Promise((resolve) => setImmediate(resolve)));
    out.destroy();
    expect(((await written) as Error).message).toBe('the output was closed before the archive was written');
    const error = await rejectionOf(writer.commit());
    expect((error as Error).message).toBe('the output was closed before the archive was written');
  });

  it('leaves no listener on a slow output once commit() returned', async () => {
    const out = new Writable({
      highWaterMark: 512,
      write(_chunk: Buffer, _encoding, done) {
        setImmediate(done);
      },
    });
    const before = { close: out.listenerCount('close'), drain: out.listenerCount('drain') };
    const writer = new OciLayoutWriter(out);
    const big = Buffer.alloc(64 * 1024, 9);
    await writer.writeBlob({ digest: sha256Digest(big) as Digest, size: big.length }, [big]);
    await within(writer.commit());
    expect({ close: out.listenerCount('close'), drain: out.listenerCount('drain') }).toEqual(before);
  });

  it('an output that fails between writes: its error for every later call, and no crash', async () => {
    const { out } = collector();
    const writer = new OciLayoutWriter(out);
    await writer.writeBlob({ digest, size: blob.length }, [blob]);
    const gone = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    const closed = new Promise<void>((resolve) => out.on('close', () => resolve()));
    out.destroy(gone);
    await within(closed);
    const other = Buffer.from('another blob');
    expect(await rejectionOf(writer.writeBlob({ digest: sha256Digest(other) as Digest, size: 12 }, [other]))).toBe(
      gone,
    );
    expect(await rejectionOf(writer.commit())).toBe(gone);
  });
});

/** Node's fs calls, with a hook before (`open`, `rename`) and a count of the handles still open. */
function hookedFs(hooks: {
  beforeOpen?: (path: string) => Promise<void>;
  afterOpen?: (path: string) => Promise<void>;
  beforeRename?: (from: string, to: string) => Promise<void>;
}): OutputFs & { openHandles: () => number } {
  let openHandles = 0;
  return {
    openHandles: () => openHandles,
    createWriteStream: (path) => createWriteStream(path, { flags: 'wx' }),
    async open(path, flags, mode) {
      await hooks.beforeOpen?.(path);
      const handle = await open(path, flags, mode);
      openHandles += 1;
      const close = handle.close.bind(handle);
      handle.close = async () => {
        openHandles -= 1;
        await close();
      };
      await hooks.afterOpen?.(path);
      return handle;
    },
    async rename(from, to) {
      await hooks.beforeRename?.(from, to);
      await rename(from, to);
    },
  };
}

function gate(): { wait: Promise<void>; release: () => void; reached: Promise<void>; reach: () => void } {
  let release: () => void = () => undefined;
  let reach: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => (release = resolve));
  const reached = new Promise<void>((resolve) => (reach = resolve));
  return { wait, release, reached, reach };
}

const isTemp = (path: string): boolean => /\.wharf-[0-9a-f-]{36}\.part$/.test(path);

describe('the folder writer', () => {
  it('answers hasBlob true for a blob still streaming in', async () => {
    const writer = new OciLayoutDirWriter(join(work, 'layout'));
    const g = gate();
    async function* body(): AsyncGenerator<Uint8Array> {
      yield blob.subarray(0, 4);
      g.reach();
      await g.wait;
      yield blob.subarray(4);
    }
    const write = writer.writeBlob({ digest, size: blob.length }, body());
    await within(g.reached);
    expect(await writer.hasBlob(digest)).toBe(true);
    g.release();
    await within(write);
  });

  it('creates an empty layout when committed with nothing written', async () => {
    const dir = join(work, 'empty');
    const writer = new OciLayoutDirWriter(dir);
    await within(writer.commit());
    expect((await readdir(dir)).sort()).toEqual(['index.json', 'oci-layout']);
    expect(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'))).toMatchObject({ manifests: [] });
  });

  it('refuses a blob longer than its descriptor, naming the bytes read up to the first one too many', async () => {
    const fs = hookedFs({});
    const dir = join(work, 'long');
    const writer = new OciLayoutDirWriter(dir, {}, fs);
    const chunk = Buffer.alloc(8, 1);
    const error = await rejectionOf(writer.writeBlob({ digest, size: 10 }, [chunk, chunk, chunk]));
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe('SIZE_INVALID');
    expect((error as OciError).message).toBe(
      `blobs/sha256/${digest.slice('sha256:'.length)}: 16 bytes or more, the descriptor says 10`,
    );
    expect(fs.openHandles()).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it('closes every file it opened once commit() returned', async () => {
    const fs = hookedFs({});
    const writer = new OciLayoutDirWriter(join(work, 'closed'), {}, fs);
    await writer.writeBlob({ digest, size: blob.length }, [blob]);
    await within(writer.commit());
    expect(fs.openHandles()).toBe(0);
  });

  it('refuses every write after abort(), as aborted', async () => {
    const dir = join(work, 'user-made');
    await mkdir(dir);
    const writer = new OciLayoutDirWriter(dir);
    await writer.hasBlob(digest);
    await within(writer.abort());
    const error = await rejectionOf(writer.writeBlob({ digest, size: blob.length }, [blob]));
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe('UNKNOWN');
    expect((error as OciError).message).toBe('the copy into the layout was aborted');
    expect(await readdir(dir)).toEqual([]);
  });

  it('aborts before it opened the folder, and after the folder was refused', async () => {
    await within(new OciLayoutDirWriter(join(work, 'never')).abort());
    await expect(stat(join(work, 'never'))).rejects.toMatchObject({ code: 'ENOENT' });

    const dir = join(work, 'notes');
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    const writer = new OciLayoutDirWriter(dir);
    await rejectionOf(writer.writeBlob({ digest, size: blob.length }, [blob]));
    await within(writer.abort());
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });

  it('can be aborted twice, the folder it created gone', async () => {
    const dir = join(work, 'twice');
    const writer = new OciLayoutDirWriter(dir);
    await writer.writeBlob({ digest, size: blob.length }, [blob]);
    await within(writer.abort());
    await within(writer.abort());
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('removes, on abort, the temp file of a commit under way', async () => {
    const dir = join(work, 'committing');
    await mkdir(dir);
    const g = gate();
    const fs = hookedFs({
      afterOpen: async (path) => {
        if (!isTemp(path)) return;
        g.reach();
        await g.wait;
      },
    });
    const writer = new OciLayoutDirWriter(dir, {}, fs);
    const committed = writer.commit().then(
      () => 'committed',
      () => 'failed',
    );
    await within(g.reached);
    expect((await readdir(dir)).filter(isTemp)).toHaveLength(1);
    await within(writer.abort());
    expect(await readdir(dir)).toEqual([]);
    g.release();
    await within(committed);
    expect(await readdir(dir)).toEqual([]);
  });

  it('aborts while a temp file is still being opened', async () => {
    const dir = join(work, 'opening');
    await mkdir(dir);
    const g = gate();
    const fs = hookedFs({
      beforeOpen: async (path) => {
        if (!isTemp(path)) return;
        g.reach();
        await g.wait;
      },
    });
    const writer = new OciLayoutDirWriter(dir, {}, fs);
    const committed = writer.commit().then(
      () => 'committed',
      () => 'failed',
    );
    await within(g.reached);
    await within(writer.abort());
    g.release();
    await within(committed);
  });

  it('aborts after a rename into place failed, leaving the folder as it was', async () => {
    const dir = join(work, 'rename-fails');
    await mkdir(dir);
    const fs = hookedFs({
      beforeRename: async () => {
        throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      },
    });
    const writer = new OciLayoutDirWriter(dir, {}, fs);
    expect(await rejectionOf(writer.writeBlob({ digest, size: blob.length }, [blob]))).toMatchObject({ code: 'EIO' });
    await within(writer.abort());
    expect(await readdir(dir)).toEqual(['blobs']);
  });

  it("keeps the layout's index.json and manifest.json when a commit that replaced one fails and is aborted", async () => {
    const dir = join(work, 'merge');
    const first = new OciLayoutDirWriter(dir);
    await writeTestImage(first, await makeImage({ seed: testSeed('export-edges-first'), layers: 1 }), name, 'v1');
    await within(first.commit());
    const index = await readFile(join(dir, 'index.json'));

    const fs = hookedFs({
      beforeRename: async (_from, to) => {
        if (to.endsWith('index.json')) throw Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' });
      },
    });
    const second = new OciLayoutDirWriter(dir, {}, fs);
    await writeTestImage(second, await makeImage({ seed: testSeed('export-edges-second'), layers: 1 }), name, 'v1');
    expect(await rejectionOf(second.commit())).toMatchObject({ code: 'ENOSPC' });
    await within(second.abort());
    expect(await readFile(join(dir, 'index.json'))).toEqual(index);
    expect((await stat(join(dir, 'manifest.json'))).isFile()).toBe(true);
  });
});

describe('a TempOutput', () => {
  it('never writes over a file that holds its temp name, and commit() fails with that', async () => {
    const final = join(work, 'out.tar');
    const taken = `${final}.${process.pid}.part`;
    await writeFile(taken, 'not ours');
    const output = new TempOutput(final);
    const [error] = (await within(once(output.stream, 'error'))) as [NodeJS.ErrnoException];
    expect(error.code).toBe('EEXIST');
    expect(await rejectionOf(output.commit())).toBe(error);
    await expect(stat(final)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(taken, 'utf8')).toBe('not ours');
  });

  it("node's stream is exclusive: it refuses a path that exists", async () => {
    const path = join(work, 'exists');
    await writeFile(path, 'kept');
    const stream = nodeOutputFs.createWriteStream(path) as WriteStream;
    const [error] = (await within(once(stream, 'error'))) as [NodeJS.ErrnoException];
    expect(error.code).toBe('EEXIST');
    expect(await readFile(path, 'utf8')).toBe('kept');
  });

  it('discard() removes what was written, and a second discard() is no error', async () => {
    const final = join(work, 'discarded.tar');
    const output = new TempOutput(final);
    output.stream.write('some bytes');
    await within(new Promise<void>((resolve) => output.stream.write('', () => resolve())));
    expect((await stat(output.temp)).isFile()).toBe(true);
    await within(output.discard());
    await expect(stat(output.temp)).rejects.toMatchObject({ code: 'ENOENT' });
    await within(output.discard());
    expect(await readdir(work)).toEqual([]);
  });
});
