/**
 * @module store/verified-read
 * Reads of committed blobs that check the bytes against the digest, so serve
 * never completes a response with bytes that fail verification (ADR 0009):
 *
 * - a small blob (up to `smallBlobBytes`) is read whole and checked before any
 *   byte goes out; a mismatch means "not here", so a mirror fetches it again at
 *   once and the client never notices;
 * - a larger one is hashed once, in the background (verified-files.ts), while
 *   its readers stream it: each reader's read that reaches the end waits for that
 *   verdict and fails instead of returning its bytes when the digest does not
 *   match, so the last chunk never goes out and the connection is cut (no clean end).
 *
 * Ranges that stop before the last byte are served as read, like every registry
 * (the digest covers the whole blob).
 * Which files need the check at all is verified-files.ts: one that passed is
 * trusted while its identity is unchanged.
 */
import { createDigester, digestAlgorithm, formatDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobFile, BlobHandle, ByteRange } from '../oci/image-source.js';
import type { CorruptionReason } from './quarantine.js';
import type { Verdict } from './verified-files.js';

/** Read whole and checked before serving: one read buffer's worth (blob-handlers' chunk size). */
export const smallBlobBytes = 1024 * 1024;

/** Told of a failed check; resolves once the blob is quarantined. */
export type OnCorrupt = (reason: CorruptionReason, ino: number | undefined) => Promise<void>;

/** A handle over bytes already read and checked. */
export function memoryBlob(digest: Digest, bytes: Buffer): BlobHandle {
  const slice = (range?: ByteRange): Buffer =>
    range === undefined ? bytes : bytes.subarray(range.start, range.end + 1);
  return {
    digest,
    size: bytes.byteLength,
    open: (range) => once(slice(range)),
    openFile: () =>
      Promise.resolve({
        read: (buffer, position) => {
          // Stryker disable next-line MethodExpression: Buffer.copy stops at the source's end either way.
          const end = Math.min(bytes.byteLength, position + buffer.byteLength);
          // Stryker disable next-line ConditionalExpression,EqualityOperator: a copy from the end copies 0 bytes either way.
          return Promise.resolve(position >= end ? 0 : bytes.copy(buffer, 0, position, end));
        },
        close: () => Promise.resolve(),
      }),
  };
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Whether bytes read whole are the blob: the reason they are not, or undefined. */
export function checkWhole(digest: Digest, size: number, bytes: Buffer): CorruptionReason | undefined {
  if (bytes.byteLength !== size) return 'size-mismatch';
  const hash = createDigester(digestAlgorithm(digest)).update(bytes);
  return formatDigest(digestAlgorithm(digest), hash) === digest ? undefined : 'digest-mismatch';
}

/** Hashes a whole file by positioned reads: the reason it is not the blob, or undefined. */
export async function hashWholeFile(
  file: BlobFile,
  digest: Digest,
  size: number,
): Promise<CorruptionReason | undefined> {
  const algorithm = digestAlgorithm(digest);
  const hash = createDigester(algorithm);
  // Stryker disable next-line MethodExpression: a buffer size; any size hashes the same bytes.
  const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(smallBlobBytes, size)));
  let position = 0;
  for (;;) {
    const bytes = await file.read(buffer, position);
    if (bytes === 0) break;
    hash.update(buffer.subarray(0, bytes));
    position += bytes;
    // Stryker disable next-line ConditionalExpression: stops reading a file that is too long early; the check after the loop gives the same answer.
    if (position > size) return 'size-mismatch';
  }
  if (position !== size) return 'size-mismatch';
  return formatDigest(algorithm, hash) === digest ? undefined : 'digest-mismatch';
}

/**
 * Wraps a file not yet trusted: reads go through as read, and the read that reaches the end waits
 * for `verdict()` (the file's shared hash, verified-files.ts) and fails instead of returning its
 * bytes unless the file is verified (a corrupt file was quarantined by the hash). The hash starts at
 * a read from byte 0, so it runs while the body streams, or at the end; a range that stops short of
 * the end starts none. An abandoned hash (it could not finish) makes `hashOwn` hash the file here.
 */
export function awaitingFile(
  file: BlobFile,
  digest: Digest,
  size: number,
  verdict: () => Promise<Verdict>,
  hashOwn: () => Promise<Verdict>,
): BlobFile {
  return {
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ObjectLiteral: a read size passed on; any size reads the same bytes.
    ...(file.chunkBytes === undefined ? {} : { chunkBytes: file.chunkBytes }),
    read: async (buffer, position) => {
      // Started early, awaited at the end (the shared hash never rejects).
      if (position === 0) void verdict();
      const bytes = await file.read(buffer, position);
      if (bytes > 0 && position + bytes < size) return bytes;
      let outcome = await verdict();
      if (outcome === 'abandoned') outcome = await hashOwn();
      if (outcome !== 'verified') {
        throw new OciError('UNAVAILABLE', `blob ${digest} failed verification and was quarantined`, {
          detail: { digest },
        });
      }
      return bytes;
    },
    close: () => file.close(),
  };
}
