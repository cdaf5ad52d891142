/**
 * @module test/support/writer-output
 * For in-process tests of the layout writers: a deadline on any promise, the rejection a call must
 * end in (an OciError for a refusal), a test image written the engine's way, an in-memory output that
 * keeps what a writer sends, and the entries of the tar it holds.
 */
import { Writable } from 'node:stream';
import { extract } from 'tar-stream';
import type { Digest } from '../../src/oci/digest.js';
import { OciError } from '../../src/oci/errors.js';
import type { ImageWriter } from '../../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../../src/oci/reference.js';
import { list } from './archive-entries.js';
import type { TestImage } from './make-image.js';

/** `promise`, or a rejection after `ms`: no wait on an event without a deadline. */
export function within<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** What `promise` rejects with; a resolution fails the test. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return within(
    promise.then(
      () => {
        throw new Error('expected a rejection');
      },
      (e: unknown) => e,
    ),
  );
}

/** The OciError `promise` rejects with; a resolution or another error fails the test. */
export async function refusal(promise: Promise<unknown>): Promise<OciError> {
  const error = await rejectionOf(promise);
  if (!(error instanceof OciError)) throw new Error(`expected an OciError, got ${String(error)}`);
  return error;
}

/**
 * Writes a test image into a writer the transfer engine's way: blobs first (those it says it has are
 * skipped), then the root manifest, then `tag` on it when given.
 */
export async function writeTestImage(
  writer: ImageWriter,
  image: TestImage,
  name: RepoName,
  tag?: string,
): Promise<void> {
  for (const [digest, bytes] of image.blobs) {
    if (await writer.hasBlob(digest as Digest)) continue;
    await writer.writeBlob({ digest: digest as Digest, size: bytes.length }, list([bytes]));
  }
  const root = image.root;
  await writer.writeManifest(name, {
    mediaType: root.mediaType,
    digest: root.digest as Digest,
    size: root.size,
    bytes: root.bytes,
  });
  if (tag !== undefined) await writer.tag(name, tag as Tag, root.digest as Digest);
}

/** An output that takes every write at once and keeps the bytes. */
export function collector(): { out: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { out, bytes: () => Buffer.concat(chunks) };
}

export interface WrittenEntry {
  name: string;
  type: string;
  data: Buffer;
}

/** The entries of a tar, in order, read with tar-stream. */
export async function tarEntries(tar: Buffer): Promise<WrittenEntry[]> {
  const parser = extract();
  const entries: WrittenEntry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    parser.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: unknown) => parts.push(c as Buffer));
      stream.on('end', () => {
        entries.push({ name: header.name, type: header.type ?? '', data: Buffer.concat(parts) });
        next();
      });
    });
    parser.on('finish', resolve);
    parser.on('error', reject);
  });
  parser.end(tar);
  await within(done);
  return entries;
}
