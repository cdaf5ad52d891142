/**
 * What the layout folder writer must refuse or leave behind (round 9c of planted bugs): a folder
 * holding a layout of another major version, a folder with other files and no oci-layout (even
 * without an index.json), an abort while a blob is still streaming in (nothing may appear after the
 * abort returned), and docker's manifest.json merge dropping an entry no RepoTag names any more.
 * The writer is the real OciLayoutDirWriter on disk. And the tar writer's commit(): once it returned,
 * the whole tar is in its output (export then ends, syncs and renames the file).
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mergeDockerLoadManifest } from '../src/archive/docker-load-manifest.js';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import { OciLayoutWriter } from '../src/archive/oci-layout-writer.js';
import type { Digest } from '../src/oci/digest.js';
import { sha256Digest } from './support/make-image.js';
import { refusal } from './support/writer-output.js';

let work: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-layout-edges-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const blob = Buffer.from('a blob that streams in two parts');
const digest = sha256Digest(blob) as Digest;

describe('a folder the layout writer must not write into', () => {
  it('refuses a layout of another major version, and leaves it as it was', async () => {
    const dir = join(work, 'v2');
    await mkdir(dir);
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '2.0.0' }));
    const writer = new OciLayoutDirWriter(dir);
    const error = await refusal(writer.writeBlob({ digest, size: blob.length }, [blob]));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.message).toContain('imageLayoutVersion "2.0.0"');
    expect(await readdir(dir)).toEqual(['oci-layout']);
  });

  it('refuses a folder with other files and no oci-layout, with no index.json either', async () => {
    const dir = join(work, 'notes');
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    const writer = new OciLayoutDirWriter(dir);
    const error = await refusal(writer.writeBlob({ digest, size: blob.length }, [blob]));
    expect(error.code).toBe('NAME_INVALID');
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });
});

describe('an abort while a blob streams in', () => {
  it('waits for the write under way: once abort() returned, the folder it created stays gone', async () => {
    const dir = join(work, 'created');
    const writer = new OciLayoutDirWriter(dir);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started: () => void = () => undefined;
    const streaming = new Promise<void>((resolve) => (started = resolve));
    async function* body(): AsyncGenerator<Uint8Array> {
      yield blob.subarray(0, 10);
      started();
      await gate;
      yield blob.subarray(10);
    }
    const write = writer.writeBlob({ digest, size: blob.length }, body());
    const written = write.then(
      () => 'written',
      () => 'failed',
    );
    await streaming;
    const aborted = writer.abort();
    // abort() may return only once the write is over; give it the chance to return early.
    await Promise.race([aborted, delay(500)]);
    release();
    await aborted;
    await written;
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe("docker's manifest.json merged into a layout folder", () => {
  it('drops an old entry whose RepoTags all moved to new images, keeps one that had none', () => {
    const old = { Config: 'blobs/sha256/old', RepoTags: ['team/app:v1'], Layers: ['blobs/sha256/l1'] };
    const untagged = { Config: 'blobs/sha256/bydigest', RepoTags: [], Layers: ['blobs/sha256/l2'] };
    const added = { Config: 'blobs/sha256/new', RepoTags: ['team/app:v1'], Layers: ['blobs/sha256/l3'] };
    expect(mergeDockerLoadManifest([old, untagged], [added])).toEqual([untagged, added]);
  });
});

describe('the tar writer', () => {
  it('has written the whole tar, its end included, into a slow output once commit() returned', async () => {
    const chunks: Buffer[] = [];
    const out = new Writable({
      highWaterMark: 512,
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        setTimeout(done, 2);
      },
    });
    const writer = new OciLayoutWriter(out);
    const big = Buffer.alloc(64 * 1024, 7);
    await writer.writeBlob({ digest: sha256Digest(big) as Digest, size: big.length }, [big]);
    await writer.commit();
    const written = Buffer.concat(chunks);
    expect(written.byteLength % 512).toBe(0);
    expect(written.byteLength).toBeGreaterThan(big.length + 4 * 512);
    expect(written.subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
  });
});
