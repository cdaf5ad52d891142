/**
 * BlobFill's descriptor (store/blob-fill.ts): readers hold the temp file's descriptor open across
 * the commit's rename and its abort's unlink; it closes when the fill is settled and the last reader
 * leaves, and after that acquire() says to read the committed file instead. A release without an
 * acquire (a reader closing twice) never takes another reader's hold. A short writev (rare on a
 * regular file, possible on a full disk or a signal) is completed from where it stopped: shown
 * through the store's fs seam (DurableFs), Node's own calls with writes cut short. Written for the
 * survivors of the content scope's mutation run (docs/mutation-testing.md).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, realpath, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { BlobFill } from '../src/store/blob-fill.js';
import { BlobFiles, type DurableFs } from '../src/store/blob-files.js';
import { descriptorsUnder } from './support/open-descriptors.js';

let root: string;
beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'wharf-blob-fill-')));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const digestOf = (bytes: Buffer): Digest => requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

async function readAt(fill: BlobFill, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const read = await fill.readInto(buffer, 0);
  return buffer.subarray(0, read);
}

async function newFill(bytes: Buffer, fs?: DurableFs): Promise<{ files: BlobFiles; fill: BlobFill }> {
  const files = new BlobFiles(root, fs);
  await files.init();
  return { files, fill: await BlobFill.create(files, digestOf(bytes)) };
}

describe('BlobFill: readers and the descriptor', () => {
  it('stays open while a reader holds it across the commit, closes when the last one leaves', async () => {
    const bytes = Buffer.from('upstream bytes, read while they arrive and after the commit');
    const { files, fill } = await newFill(bytes);
    // A release with no hold (a reader closing twice) counts for nothing, before and after the fill settles.
    await fill.release();
    await fill.append([bytes.subarray(0, 10)]);
    expect(fill.acquire()).toBe(true);
    await fill.release();
    // The fill is not settled: its last reader leaving does not close the file it is still writing.
    await fill.append([bytes.subarray(10, 30), bytes.subarray(30)]);
    expect(fill.acquire()).toBe(true); // reader A
    fill.verify(bytes.length);
    expect(await fill.commit()).toEqual({ digest: digestOf(bytes), size: bytes.length });
    expect((await readFile(files.pathOf(fill.digest))).equals(bytes)).toBe(true);

    // A reads on after the rename, from the same descriptor; B joins while A holds it.
    expect((await readAt(fill, bytes.length)).equals(bytes)).toBe(true);
    expect(fill.acquire()).toBe(true); // reader B
    await fill.release(); // B
    expect((await readAt(fill, bytes.length)).equals(bytes)).toBe(true);
    expect(await descriptorsUnder(root)).toEqual([files.pathOf(fill.digest)]);
    await fill.release(); // A: the last
    expect(await descriptorsUnder(root)).toEqual([]);
    expect(fill.acquire()).toBe(false);
    await expect(readAt(fill, 1)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('committed with no reader: closed at once; a release after that changes nothing', async () => {
    const bytes = Buffer.from('nobody reads this fill');
    const { fill } = await newFill(bytes);
    await fill.append([bytes]);
    await fill.commit();
    expect(await descriptorsUnder(root)).toEqual([]);
    expect(fill.acquire()).toBe(false);
    await fill.release();
    expect(fill.acquire()).toBe(false);
  });

  it('abort: a reader holding the descriptor still reads the unlinked file; the last one out closes it', async () => {
    const bytes = Buffer.from('a fill that fails its digest check');
    const { files, fill } = await newFill(bytes);
    await fill.append([bytes]);
    const [temp] = await files.listTempFiles();
    expect(fill.acquire()).toBe(true);
    await fill.abort();
    expect(await files.listTempFiles()).toEqual([]);
    expect((await readAt(fill, bytes.length)).equals(bytes)).toBe(true);
    expect(await descriptorsUnder(root)).toEqual([`${temp?.path} (deleted)`]);
    await fill.release();
    expect(await descriptorsUnder(root)).toEqual([]);
    expect(fill.acquire()).toBe(false);
  });

  it('abort with no reader closes the file, even when the temp file is gone already', async () => {
    const bytes = Buffer.from('its temp file removed by hand before the abort');
    const { files, fill } = await newFill(bytes);
    await fill.append([bytes]);
    const [temp] = await files.listTempFiles();
    await rm(temp?.path ?? '');
    await expect(fill.abort()).resolves.toBeUndefined();
    expect(await descriptorsUnder(root)).toEqual([]);
    expect(fill.acquire()).toBe(false);
  });
});

/** Node's fs for blob writes, with each writev cut after `writevBytes` and each write after `writeBytes`. */
function shortWritesFs(writevBytes: number, writeBytes: number, calls: string[]): DurableFs {
  return {
    async open(path, flags) {
      const handle = await open(path, flags);
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'writev') {
            return async (chunks: Uint8Array[], position: number) => {
              const all = Buffer.concat(chunks);
              const { bytesWritten } = await target.write(all, 0, Math.min(writevBytes, all.length), position);
              calls.push(`writev ${all.length} at ${position}: ${bytesWritten}`);
              return { bytesWritten, buffers: chunks };
            };
          }
          if (property === 'write') {
            return async (buffer: Uint8Array, offset: number, length: number, position: number) => {
              const result = await target.write(buffer, offset, Math.min(writeBytes, length), position);
              calls.push(`write ${length} at ${position}: ${result.bytesWritten}`);
              return result;
            };
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    rename,
    remove: (path) => rm(path, { force: true }),
  };
}

describe('BlobFill.append: short writes', () => {
  it('writes the rest of a short writev from where it stopped, at the right offsets', async () => {
    const bytes = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    const calls: string[] = [];
    const { files, fill } = await newFill(bytes, shortWritesFs(5, 4, calls));
    await fill.append([bytes.subarray(0, 7), bytes.subarray(7, 16)]);
    await fill.append([bytes.subarray(16, 20), bytes.subarray(20)]);
    expect(fill.written).toBe(bytes.length);
    expect(calls).toEqual([
      'writev 16 at 0: 5',
      'write 11 at 5: 4',
      'write 7 at 9: 4',
      'write 3 at 13: 3',
      'writev 20 at 16: 5',
      'write 15 at 21: 4',
      'write 11 at 25: 4',
      'write 7 at 29: 4',
      'write 3 at 33: 3',
    ]);
    expect((await readAt(fill, bytes.length)).equals(bytes)).toBe(true);
    fill.verify(bytes.length);
    await fill.commit();
    expect((await readFile(files.pathOf(fill.digest))).equals(bytes)).toBe(true);
  });
});
