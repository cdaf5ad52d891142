/**
 * @module store/blob-fill
 * A blob being written from a stream that others may read while it grows: the
 * pull-through proxy writes upstream bytes in, and every client waiting for the
 * same digest reads them back at its own pace. Bytes are hashed on the way in;
 * the file moves under blobs/ only after size and digest matched.
 * The read descriptor stays open across the rename, so readers that started
 * before the commit finish from the same inode.
 */
import { randomUUID } from 'node:crypto';
import { rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createDigester, digestAlgorithm, formatDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobInfo } from '../oci/image-source.js';
import type { BlobFiles } from './blob-files.js';

export class BlobFill {
  written = 0;
  private readonly hash;
  private readers = 0;
  private settled = false;
  private closed = false;

  private constructor(
    readonly digest: Digest,
    private readonly files: BlobFiles,
    private readonly temp: string,
    private readonly handle: FileHandle,
  ) {
    this.hash = createDigester(digestAlgorithm(digest));
  }

  static async create(files: BlobFiles, digest: Digest): Promise<BlobFill> {
    const temp = join(files.tmpDir, `${randomUUID()}.part`);
    const handle = await files.fs.open(temp, 'wx+');
    return new BlobFill(digest, files, temp, handle);
  }

  /** Appends chunks with one writev: upstream bodies arrive in small pieces, and a syscall each would cap the fill rate. */
  async append(chunks: readonly Uint8Array[]): Promise<void> {
    let total = 0;
    for (const chunk of chunks) {
      this.hash.update(chunk);
      total += chunk.byteLength;
    }
    const { bytesWritten } = await this.handle.writev(chunks, this.written);
    if (bytesWritten < total) {
      // A short write (rare on regular files): write the rest from where it stopped.
      const rest = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))).subarray(
        bytesWritten,
      );
      let offset = 0;
      while (offset < rest.byteLength) {
        const result = await this.handle.write(
          rest,
          offset,
          rest.byteLength - offset,
          this.written + bytesWritten + offset,
        );
        offset += result.bytesWritten;
      }
    }
    this.written += total;
  }

  /** Positioned read of bytes already written (the caller never asks past `written`). */
  async readInto(buffer: Uint8Array, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.byteLength, position);
    return bytesRead;
  }

  /** Checks size and digest of what was written; throws SIZE_INVALID or DIGEST_INVALID. */
  verify(expectedSize: number | undefined): void {
    if (expectedSize !== undefined && this.written !== expectedSize) {
      throw new OciError('SIZE_INVALID', `received ${this.written} bytes, expected ${expectedSize}`, {
        detail: { digest: this.digest, expected: expectedSize, received: this.written },
      });
    }
    const computed = formatDigest(digestAlgorithm(this.digest), this.hash);
    if (computed !== this.digest) {
      throw new OciError('DIGEST_INVALID', 'content did not match its digest', {
        detail: { expected: this.digest, computed },
      });
    }
  }

  /** Commits a verified file under blobs/: fsync, rename, directory fsync (file first: the caller adds the index row). */
  async commit(): Promise<BlobInfo> {
    await this.handle.sync();
    await this.files.commitFile(this.temp, this.digest);
    this.settled = true;
    await this.closeIfIdle();
    return { digest: this.digest, size: this.written };
  }

  /** Drops the temp file; readers already holding the descriptor see an error from their fill. */
  async abort(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await rm(this.temp, { force: true });
    await this.closeIfIdle();
  }

  /**
   * Readers hold the descriptor open; it is closed when the fill is settled and
   * the last reader leaves. false when it is closed already: read the committed file instead.
   */
  acquire(): boolean {
    if (this.closed) return false;
    this.readers++;
    return true;
  }

  async release(): Promise<void> {
    if (this.readers > 0) this.readers--;
    await this.closeIfIdle();
  }

  private async closeIfIdle(): Promise<void> {
    if (!this.settled || this.readers > 0 || this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
  }
}
