/**
 * The store's digest and size checks, each with its exact refusal (issue 13, mutation testing):
 * BlobFiles.write (every push and manifest write), BlobFill.verify (every fill), Uploads.finish
 * (every chunked upload) and LocalStore.putManifest. Real temp dirs and SQLite; nothing wrong is
 * ever left under blobs/ or tmp/.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { isOciError, type OciError } from '../src/oci/errors.js';
import { maxManifestBytes } from '../src/oci/manifest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { BlobFiles } from '../src/store/blob-files.js';
import { LocalStore } from '../src/store/local-store.js';

const name = requireRepoName('verify/app');
let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-store-verification-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const digestOf = (bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest =>
  requireDigest(`${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`);

async function refusal(run: () => Promise<unknown>): Promise<OciError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOciError(error)) throw new Error(`expected an OciError, got ${String(error)}`);
  return error;
}

/** Files under blobs/ and tmp/*.part: none may be left by a refused write. */
async function leftOver(): Promise<string[]> {
  const walk = async (dir: string): Promise<string[]> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    const nested = await Promise.all(
      entries.map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))),
    );
    return nested.flat();
  };
  return [...(await walk(join(root, 'blobs'))), ...(await walk(join(root, 'tmp'))).filter((f) => f.endsWith('.part'))];
}

/** Ten-byte chunks, counting how many were pulled. */
function chunks(count: number): { source: AsyncGenerator<Uint8Array>; pulled: () => number; bytes: Buffer } {
  let pulled = 0;
  const bytes = Buffer.alloc(count * 10, 7);
  async function* source(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < count; i++) {
      pulled++;
      yield bytes.subarray(i * 10, i * 10 + 10);
    }
  }
  return { source: source(), pulled: () => pulled, bytes };
}

describe('BlobFiles.write', () => {
  let files: BlobFiles;
  beforeEach(async () => {
    files = new BlobFiles(root);
    await files.init();
  });

  it('commits what matches, in sha256 by default and in the algorithm asked for', async () => {
    const bytes = Buffer.from('hello');
    expect(await files.write([bytes])).toEqual({ digest: digestOf(bytes), size: 5 });
    expect(await files.write([bytes], { algorithm: 'sha512' })).toEqual({ digest: digestOf(bytes, 'sha512'), size: 5 });
    const sha512 = digestOf(Buffer.from('other'), 'sha512');
    expect(await files.write([Buffer.from('other')], { digest: sha512, size: 5 })).toEqual({ digest: sha512, size: 5 });
  });

  it('refuses a wrong digest with DIGEST_INVALID naming both, and keeps nothing', async () => {
    const expected = digestOf(Buffer.from('expected'));
    const error = await refusal(() => files.write([Buffer.from('actual')], { digest: expected }));
    expect([error.code, error.message]).toEqual(['DIGEST_INVALID', 'provided digest did not match uploaded content']);
    expect(error.detail).toEqual({ expected, computed: digestOf(Buffer.from('actual')) });
    expect(await leftOver()).toEqual([]);
  });

  it('refuses a short body with SIZE_INVALID naming both sizes', async () => {
    const error = await refusal(() => files.write([Buffer.from('four')], { size: 5 }));
    expect([error.code, error.message]).toEqual(['SIZE_INVALID', 'received 4 bytes, expected 5']);
    expect(error.detail).toEqual({ expected: 5, received: 4 });
    expect(await leftOver()).toEqual([]);
  });

  it('stops reading a body as soon as it passes the declared size', async () => {
    const body = chunks(5);
    const error = await refusal(() => files.write(body.source, { size: 15 }));
    expect([error.code, error.message]).toEqual(['SIZE_INVALID', 'body is larger than the declared 15 bytes']);
    expect(error.detail).toEqual({ expected: 15, received: 20 });
    expect(body.pulled()).toBe(2);
    expect(await leftOver()).toEqual([]);
  });

  it('refuses a manifest over maxSize with 413 MANIFEST_INVALID, whatever size it declares', async () => {
    const body = chunks(5);
    const error = await refusal(() => files.write(body.source, { maxSize: 25 }));
    expect([error.code, error.status, error.message]).toEqual(['MANIFEST_INVALID', 413, 'manifest exceeds 25 bytes']);
    expect(body.pulled()).toBe(3);
    const both = await refusal(() => files.write(chunks(5).source, { maxSize: 25, size: 50 }));
    expect(both.code).toBe('MANIFEST_INVALID');
    // At the limit exactly, it is written.
    expect((await files.write(chunks(3).source, { maxSize: 30 })).size).toBe(30);
  });
});

describe('BlobFill.verify', () => {
  it('refuses a fill of the wrong size or the wrong bytes, naming what it got', async () => {
    const store = await LocalStore.open(root);
    try {
      const good = Buffer.from('fill me');
      const digest = digestOf(good);
      const short = await store.startFill(digest);
      await short.append([good.subarray(0, 4)]);
      let error = await refusal(async () => short.verify(good.length));
      expect([error.code, error.message]).toEqual(['SIZE_INVALID', 'received 4 bytes, expected 7']);
      expect(error.detail).toEqual({ digest, expected: 7, received: 4 });
      await short.abort();

      const wrong = await store.startFill(digest);
      await wrong.append([Buffer.from('fill mE')]);
      error = await refusal(async () => wrong.verify(undefined));
      expect([error.code, error.message]).toEqual(['DIGEST_INVALID', 'content did not match its digest']);
      expect(error.detail).toEqual({ expected: digest, computed: digestOf(Buffer.from('fill mE')) });
      await wrong.abort();

      const right = await store.startFill(digest);
      await right.append([good.subarray(0, 3), good.subarray(3)]);
      expect(() => right.verify(7)).not.toThrow();
      await right.abort();
      const unsized = await store.startFill(digest);
      await unsized.append([good]);
      expect(() => unsized.verify(undefined)).not.toThrow();
      await unsized.abort();
      expect(await leftOver()).toEqual([]);
    } finally {
      store.close();
    }
  });
});

describe('Uploads.finish', () => {
  async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
    yield bytes;
  }

  it('refuses a wrong digest with DIGEST_INVALID and ends the session', async () => {
    const store = await LocalStore.open(root);
    try {
      const upload = await store.startUpload(name);
      await store.appendUpload(name, upload.id, once(Buffer.from('abc')));
      const expected = digestOf(Buffer.from('abd'));
      const error = await refusal(() => store.finishUpload(name, upload.id, expected));
      expect([error.code, error.message]).toEqual(['DIGEST_INVALID', 'provided digest did not match uploaded content']);
      expect(error.detail).toEqual({ expected, computed: digestOf(Buffer.from('abc')) });
      expect(await store.getUpload(name, upload.id)).toBeUndefined();
      expect(await leftOver()).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('checks a sha512 digest by hashing the file, and after a restart (no running hash)', async () => {
    let store = await LocalStore.open(root);
    const bytes = Buffer.from('chunked, then closed with sha512');
    const upload = await store.startUpload(name);
    await store.appendUpload(name, upload.id, once(bytes.subarray(0, 8)));
    store.close();
    store = await LocalStore.open(root);
    try {
      await store.appendUpload(name, upload.id, once(bytes.subarray(8)));
      const sha512 = digestOf(bytes, 'sha512');
      expect(await store.finishUpload(name, upload.id, sha512)).toEqual({ digest: sha512, size: bytes.length });
      const again = await store.startUpload(name);
      await store.appendUpload(name, again.id, once(bytes));
      expect(await store.finishUpload(name, again.id, digestOf(bytes))).toEqual({
        digest: digestOf(bytes),
        size: bytes.length,
      });
    } finally {
      store.close();
    }
  });
});

describe('LocalStore.putManifest', () => {
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  function manifestOf(size: number, config: Digest): Buffer {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [],
    });
    // Trailing whitespace keeps it valid JSON of exactly `size` bytes.
    return Buffer.from(body + ' '.repeat(size - body.length));
  }

  it('takes a manifest of exactly 4 MiB and refuses one byte more with 413', async () => {
    const store = await LocalStore.open(root);
    try {
      const config = Buffer.from('{}');
      await store.putBlob(name, digestOf(config), once(config), 2);
      const exact = manifestOf(maxManifestBytes, digestOf(config));
      expect((await store.putManifest(name, 'v1' as Tag, exact, mediaType)).digest).toBe(digestOf(exact));
      const over = manifestOf(maxManifestBytes + 1, digestOf(config));
      const error = await refusal(() => store.putManifest(name, 'v2' as Tag, over, mediaType));
      expect([error.code, error.status, error.message]).toEqual([
        'MANIFEST_INVALID',
        413,
        `manifest exceeds ${maxManifestBytes} bytes`,
      ]);
    } finally {
      store.close();
    }
  });

  it('refuses a PUT by digest whose bytes hash to another digest', async () => {
    const store = await LocalStore.open(root);
    try {
      const config = Buffer.from('{}');
      await store.putBlob(name, digestOf(config), once(config), 2);
      const bytes = manifestOf(300, digestOf(config));
      const reference = digestOf(Buffer.from('something else'));
      const error = await refusal(() => store.putManifest(name, reference, bytes, mediaType));
      expect([error.code, error.message]).toEqual(['DIGEST_INVALID', 'manifest digest does not match the reference']);
      expect(error.detail).toEqual({ reference, computed: digestOf(bytes) });
      expect((await store.putManifest(name, digestOf(bytes), bytes, mediaType)).digest).toBe(digestOf(bytes));
    } finally {
      store.close();
    }
  });

  async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
    yield bytes;
  }
});
