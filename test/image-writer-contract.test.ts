/**
 * Issue 10: one contract, run against every ImageWriter the transfer engine writes to: the store's
 * import batch and the OCI layout writers, tar and directory (read back by importing what they wrote into a
 * fresh store).
 * The same copy through the engine gives the same bytes; a body with a flipped byte is refused and
 * leaves nothing usable (a writer that says it verifies as it writes must really refuse); a blob
 * written is then had. The reader is a real store; the damaged one wraps it and flips a byte.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importArchive } from '../src/archive/import-archive.js';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import { OciLayoutWriter } from '../src/archive/oci-layout-writer.js';
import { readTarEntries } from '../src/archive/tar-entries.js';
import type { Digest } from '../src/oci/digest.js';
import type { BlobHandle } from '../src/oci/image-source.js';
import type { ImageReader, ImageWriter } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { makeImage, sha256Digest, testSeed, writeOciLayout, type TestImage } from './support/make-image.js';

const name = 'registry.example.test/team/app' as RepoName;
const tag = 'v1' as Tag;

interface WriterCase {
  label: string;
  /** A fresh writer, and how to read back what it committed (undefined: nothing usable). */
  open: (dir: string) => Promise<{ writer: ImageWriter; readBack: () => Promise<LocalStore | undefined> }>;
}

const cases: WriterCase[] = [
  {
    label: 'store import batch',
    async open(dir) {
      const store = await LocalStore.open(dir);
      return {
        writer: store.startImport(),
        readBack: async () => ((await store.getManifest(name, tag)) === undefined ? undefined : store),
      };
    },
  },
  {
    label: 'OCI layout writer',
    async open(dir) {
      const file = join(dir, 'out.tar');
      const out = createWriteStream(file);
      return {
        writer: new OciLayoutWriter(out),
        readBack: async () => {
          await new Promise((resolve) => out.end(resolve));
          const store = await LocalStore.open(join(dir, 'read-back'));
          try {
            await importArchive(readTarEntries(createReadStream(file)), store.startImport(), { label: file });
            return store;
          } catch {
            store.close();
            return undefined;
          }
        },
      };
    },
  },
  {
    label: 'OCI layout directory writer',
    async open(dir) {
      const layout = join(dir, 'layout');
      return {
        writer: new OciLayoutDirWriter(layout),
        readBack: async () => {
          const store = await LocalStore.open(join(dir, 'read-back'));
          try {
            await importArchive(readDirEntries(layout), store.startImport(), { label: layout });
            return store;
          } catch {
            store.close();
            return undefined;
          }
        },
      };
    },
  },
];

/** The source store, with every blob body's byte 10 flipped: a reader that lies. */
function flipping(reader: ImageReader): ImageReader {
  return {
    getManifest: (n, reference) => reader.getManifest(n, reference),
    async openBlob(n: RepoName, digest: Digest): Promise<BlobHandle | undefined> {
      const handle = await reader.openBlob(n, digest);
      if (handle === undefined) return undefined;
      return {
        ...handle,
        async *open() {
          let at = 0;
          for await (const chunk of handle.open()) {
            const copy = Buffer.from(chunk);
            if (at <= 10 && 10 < at + copy.length) copy[10 - at] = (copy[10 - at] ?? 0) ^ 0xff;
            at += copy.length;
            yield copy;
          }
        },
      };
    },
  };
}

describe.each(cases)('ImageWriter contract: $label', ({ open }) => {
  let work: string;
  let source: LocalStore;
  let image: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-writer-contract-'));
    image = await makeImage({
      seed: testSeed('writer contract'),
      layers: 2,
      layerSize: 64 * 1024,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    await writeOciLayout(image, join(work, 'layout'), `${name}:${tag}`);
    source = await LocalStore.open(join(work, 'source'));
    await importArchive(readDirEntries(join(work, 'layout')), source.startImport(), { label: 'layout' });
  });

  afterAll(async () => {
    source?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('a copy through the engine reads back byte for byte', async () => {
    const { writer, readBack } = await open(await mkdtemp(join(work, 'ok-')));
    await copyImages(source, writer, [{ from: { name, reference: tag } }]);
    const store = await readBack();
    expect(store).toBeDefined();
    if (store === undefined) return;
    try {
      expect(Buffer.from((await store.getManifest(name, tag))?.bytes ?? []).equals(image.root.bytes)).toBe(true);
      for (const [digest, bytes] of image.blobs) {
        const chunks: Uint8Array[] = [];
        for await (const chunk of (await store.openBlob(name, digest as Digest))?.open() ?? []) chunks.push(chunk);
        expect(sha256Digest(Buffer.concat(chunks)), digest).toBe(sha256Digest(bytes));
      }
    } finally {
      store.close();
    }
  });

  it('a blob body with a flipped byte is refused, and nothing usable is left', async () => {
    const { writer, readBack } = await open(await mkdtemp(join(work, 'bad-')));
    await expect(copyImages(flipping(source), writer, [{ from: { name, reference: tag } }])).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
    const store = await readBack();
    store?.close();
    expect(store).toBeUndefined();
  });

  // Round 3 of the planted-bug audit: the directory writer took a body one byte short (the engine's
  // own check stood in front of it, so only a writer called directly shows it).
  it('refuses a blob body shorter than its descriptor', async () => {
    const { writer } = await open(await mkdtemp(join(work, 'short-')));
    const [digest, bytes] = [...image.blobs][0] ?? [];
    if (digest === undefined || bytes === undefined) throw new Error('no blob');
    const body = (async function* (): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, bytes.length - 1);
    })();
    await expect(writer.writeBlob({ digest: digest as Digest, size: bytes.length }, body)).rejects.toThrow();
    await writer.abort();
  });

  it('has a blob once it is written', async () => {
    const { writer } = await open(await mkdtemp(join(work, 'has-')));
    const [digest, bytes] = [...image.blobs][0] ?? [];
    if (digest === undefined || bytes === undefined) throw new Error('no blob');
    expect(await writer.hasBlob(digest as Digest)).toBe(false);
    const body = (async function* (): AsyncGenerator<Uint8Array> {
      yield bytes;
    })();
    await writer.writeBlob({ digest: digest as Digest, size: bytes.length }, body);
    expect(await writer.hasBlob(digest as Digest)).toBe(true);
    await writer.abort();
  });
});
