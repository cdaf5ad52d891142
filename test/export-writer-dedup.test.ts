/**
 * The export writers' second pass of the archive-export Stryker scope (eighteenth wave): what each
 * writer does with a blob it already has. The tar writer writes each blob, and each of `blobs/` and
 * `blobs/<alg>/`, once (a second one is a duplicate tar entry); its commit() fails when the output
 * closes while the tar's end waits to drain, and a blob it took whole fails when the output fails
 * before passing it on. The folder writer finds a blob an earlier batch left
 * (hasBlob, and docker's manifest.json counts it), opens one temp file per digest however often it
 * is written, and writes a blob again after a failed first write. All in-process: the real writers
 * on a scratch folder or a Writable, the tar parsed by tar-stream, the folder writer's fs counted.
 */
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeOutputFs, type OutputFs } from '../src/archive/durable-output.js';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import { OciLayoutWriter } from '../src/archive/oci-layout-writer.js';
import type { Digest } from '../src/oci/digest.js';
import type { OciError } from '../src/oci/errors.js';
import type { RepoName } from '../src/oci/reference.js';
import { makeImage, sha256Digest, testSeed } from './support/make-image.js';
import { collector, rejectionOf, tarEntries, within, writeTestImage } from './support/writer-output.js';

const name = 'team/app' as RepoName;
let work: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-export-dedup-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Node's fs, counting the temp files opened (not the folders opened to fsync them). */
function countingFs(): OutputFs & { opened: () => number } {
  let opened = 0;
  return {
    opened: () => opened,
    createWriteStream: (path) => nodeOutputFs.createWriteStream(path),
    async open(path, flags, mode) {
      if (path.endsWith('.part')) opened += 1;
      return open(path, flags, mode);
    },
    rename: (from, to) => rename(from, to),
  };
}

const one = Buffer.from('the first blob, sixteen-ish');
const two = Buffer.from('a second blob, other bytes');
const oneDigest = sha256Digest(one) as Digest;
const twoDigest = sha256Digest(two) as Digest;

describe('the tar writer', () => {
  it('writes a blob once, and blobs/ and blobs/sha256/ once, however often they come', async () => {
    const { out, bytes } = collector();
    const writer = new OciLayoutWriter(out);
    await writer.writeBlob({ digest: oneDigest, size: one.length }, [one]);
    await writer.writeBlob({ digest: oneDigest, size: one.length }, [one]);
    await writer.writeBlob({ digest: twoDigest, size: two.length }, [two]);
    await within(writer.commit());
    const entries = await tarEntries(bytes());
    expect(entries.map(({ name, type }) => ({ name, type }))).toEqual([
      { name: 'oci-layout', type: 'file' },
      { name: 'blobs/', type: 'directory' },
      { name: 'blobs/sha256/', type: 'directory' },
      { name: `blobs/sha256/${oneDigest.slice('sha256:'.length)}`, type: 'file' },
      { name: `blobs/sha256/${twoDigest.slice('sha256:'.length)}`, type: 'file' },
      { name: 'index.json', type: 'file' },
    ]);
  });

  it("fails commit() when the output closes while the tar's last bytes wait to drain", async () => {
    // Every write fills this output (highWaterMark 1); the tar's end (1024 zero bytes) is never
    // taken: the output is destroyed, without an error, while the writer waits for its drain.
    const out = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _encoding, done) {
        if (chunk.length === 1024 && chunk.every((b) => b === 0)) setImmediate(() => out.destroy());
        else done();
      },
    });
    const writer = new OciLayoutWriter(out);
    await writer.writeBlob({ digest: oneDigest, size: one.length }, [one]);
    const error = await rejectionOf(writer.commit());
    expect((error as Error).message).toBe('the output was closed before the archive was written');
    // The drain it waited for will not come: its listener is gone too.
    expect(out.listenerCount('drain')).toBe(0);
  });

  it('fails a blob the tar took whole but had not passed on when the output failed', async () => {
    // The output takes the first chunk and no more: the tar's buffer fills behind it, and the blob's
    // last bytes, handed over and ended, wait in its entry when the output fails.
    const out = new Writable({
      highWaterMark: 1,
      write() {
        // Never done: the pump waits on a 'drain' that does not come.
      },
    });
    const writer = new OciLayoutWriter(out);
    const head = Buffer.alloc(15 * 1024, 7);
    const tail = Buffer.alloc(100, 8);
    const whole = Buffer.concat([head, tail]);
    const written = rejectionOf(
      writer.writeBlob({ digest: sha256Digest(whole) as Digest, size: whole.length }, [head, tail]),
    );
    for (let i = 0; i < 5; i++) await within(new Promise((resolve) => setImmediate(resolve)));
    const gone = new Error('the reader went away');
    out.destroy(gone);
    expect(await written).toBe(gone);
    expect(await rejectionOf(writer.commit())).toBe(gone);
  });
});

describe('the folder writer', () => {
  it("has a blob an earlier batch left, and docker's manifest.json counts it", async () => {
    const dir = join(work, 'layout');
    const image = await makeImage({ seed: testSeed('export-dedup-dir'), layers: 2 });
    const first = new OciLayoutDirWriter(dir);
    await writeTestImage(first, image, name, 'v1');
    await within(first.commit());

    const fs = countingFs();
    const second = new OciLayoutDirWriter(dir, {}, fs);
    const layer = image.images[0]!.layers[0]!.digest as Digest;
    expect(await second.hasBlob(layer)).toBe(true);
    await mkdir(join(dir, 'blobs', 'sha256', 'f'.repeat(64)));
    expect(await second.hasBlob(`sha256:${'f'.repeat(64)}` as Digest)).toBe(false);
    await writeTestImage(second, image, name, 'v2');
    await within(second.commit());
    // Every blob but the manifest (writeTestImage asks no hasBlob for it) was there: besides
    // it, only the new manifest.json and index.json were written.
    expect(fs.opened()).toBe(3);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Array<{ RepoTags: string[] }>;
    expect(manifest.map((e) => e.RepoTags)).toEqual([['team/app:v1', 'team/app:v2']]);
  });

  it('opens one temp file for two writes of one digest at once, and none for a third one after', async () => {
    const fs = countingFs();
    const dir = join(work, 'layout');
    const writer = new OciLayoutDirWriter(dir, {}, fs);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<Uint8Array> {
      await held;
      yield one;
    }
    const first = writer.writeBlob({ digest: oneDigest, size: one.length }, slow());
    // The second write of the digest, while the first one waits for its bytes.
    await within(new Promise((resolve) => setImmediate(resolve)));
    const second = writer.writeBlob({ digest: oneDigest, size: one.length }, [one]);
    await within(new Promise((resolve) => setImmediate(resolve)));
    release();
    await within(Promise.all([first, second]));
    expect(fs.opened()).toBe(1);
    await within(writer.writeBlob({ digest: oneDigest, size: one.length }, [one]));
    expect(fs.opened()).toBe(1);
    expect(await readFile(join(dir, 'blobs', 'sha256', oneDigest.slice('sha256:'.length)))).toEqual(one);
  });

  it('writes a blob again after its first write failed, and commits', async () => {
    const dir = join(work, 'layout');
    const writer = new OciLayoutDirWriter(dir);
    const error = await rejectionOf(writer.writeBlob({ digest: oneDigest, size: one.length + 1 }, [one]));
    expect((error as OciError).code).toBe('SIZE_INVALID');
    expect(await writer.hasBlob(oneDigest)).toBe(false);
    await within(writer.writeBlob({ digest: oneDigest, size: one.length }, [one]));
    await within(writer.commit());
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([oneDigest.slice('sha256:'.length)]);
  });
});
