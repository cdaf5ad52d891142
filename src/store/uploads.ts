/**
 * @module store/uploads
 * Upload sessions (spec §Pushing blobs: POST, PATCH, PUT, status GET, cancel).
 * A session is a row in `uploads` plus a file tmp/uploads/<id>; the row's size
 * is the committed length, the file never counts past it. A running sha256 is
 * kept in memory so the closing PUT does not re-read the file; after a restart,
 * a failed chunk or a sha512 digest, the file is hashed again instead.
 * Open sessions are capped (upload-quota.ts); a session that got no byte for
 * emptyMaxAgeMs is dropped long before the general maxAgeMs.
 */
import { randomUUID, type Hash } from 'node:crypto';
import { createDigester, digestAlgorithm, formatDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobInfo, ChunkRange, UploadState } from '../oci/image-source.js';
import { formatUploadRange } from '../oci/ranges.js';
import type { RepoName } from '../oci/reference.js';
import { isNotFound, type BlobFiles } from './blob-files.js';
import type { Lifecycle } from './lifecycle.js';
import type { StoreIndex, UploadRow } from './store-index.js';
import { UploadQuota, type UploadLimits } from './upload-quota.js';

export interface UploadSettings extends UploadLimits {
  /** A session untouched this long is removed. */
  maxAgeMs: number;
  /** A session that never received a byte is removed after this long: a POST nobody followed up. */
  emptyMaxAgeMs: number;
}

interface RunningHash {
  hash: Hash;
  size: number;
}

export class Uploads {
  private readonly hashes = new Map<string, RunningHash>();
  private readonly busy = new Set<string>();
  private readonly quota: UploadQuota;

  constructor(
    private readonly files: BlobFiles,
    private readonly index: StoreIndex,
    private readonly settings: UploadSettings,
    private readonly lifecycle: Lifecycle,
  ) {
    this.quota = new UploadQuota(settings);
  }

  /** Opens a session for `client` (an address, counted against the per-client cap), or refuses with 429. */
  async start(name: RepoName, client?: string): Promise<UploadState> {
    if (this.quota.refusal(this.index.countUploads(), client) !== undefined) {
      // Full: what has expired gives its slot back before anyone is refused.
      await this.expire();
      const refusal = this.quota.refusal(this.index.countUploads(), client);
      if (refusal !== undefined) throw refusal;
    }
    const slot = this.quota.reserve(client);
    const id = randomUUID();
    try {
      await this.files.createUpload(id);
      this.index.createUpload(name, id);
    } catch (error) {
      slot.abandon();
      await this.files.removeUpload(id).catch(() => undefined);
      throw error;
    }
    slot.opened(id);
    // Stryker disable next-line ObjectLiteral: an entry without hash and size is never used (its size never equals the upload's): the closing PUT hashes the file instead, which holds the same bytes (only appends write it), later.
    this.hashes.set(id, { hash: createDigester('sha256'), size: 0 });
    return { id, name, size: 0 };
  }

  get(name: RepoName, id: string): UploadState | undefined {
    const row = this.index.upload(name, id);
    return row === undefined ? undefined : { id, name, size: row.size };
  }

  async append(name: RepoName, id: string, body: AsyncIterable<Uint8Array>, range?: ChunkRange): Promise<UploadState> {
    const row = this.require(name, id);
    return this.exclusive(id, async () => ({ id, name, size: await this.appendLocked(row, body, range) }));
  }

  async finish(
    name: RepoName,
    id: string,
    digest: Digest,
    body?: AsyncIterable<Uint8Array>,
    range?: ChunkRange,
  ): Promise<BlobInfo> {
    const row = this.require(name, id);
    return this.exclusive(id, async () => {
      const size = body === undefined ? row.size : await this.appendLocked(row, body, range);
      const running = this.hashes.get(id);
      const algorithm = digestAlgorithm(digest);
      const computed =
        // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: an append keeps the running hash's size equal to the upload's or drops it (the size test is a guard), and hashing the file gives the same digest as the running hash, only later.
        running !== undefined && running.size === size && algorithm === 'sha256'
          ? formatDigest('sha256', running.hash)
          : await this.files.hashUpload(id, algorithm);
      if (computed !== digest) {
        await this.remove(id);
        throw new OciError('DIGEST_INVALID', 'provided digest did not match uploaded content', {
          detail: { expected: digest, computed },
        });
      }
      await this.commit(name, id, digest, size);
      this.index.deleteUpload(id);
      this.quota.release(id);
      this.hashes.delete(id);
      return { digest, size };
    });
  }

  /**
   * Counts the blob against store.maxSize (a refusal ends the session: nothing is kept), then moves
   * the file into place and writes its row with the digest leased, so gc cannot take it in between.
   */
  private async commit(name: RepoName, id: string, digest: Digest, size: number): Promise<void> {
    let reservation;
    try {
      reservation = await this.lifecycle.reserve(this.index.blobSize(digest) === undefined ? size : 0);
    } catch (error) {
      await this.remove(id);
      throw error;
    }
    try {
      await this.lifecycle.guard.lease(digest, async () => {
        await this.files.commitUpload(id, digest);
        this.index.addBlob(name, digest, size);
      });
      // A push in progress: its manifest comes next and must find the blob.
      this.lifecycle.guard.touch(digest);
    } finally {
      reservation.release();
    }
  }

  /** Sessions that the next clean would remove as abandoned (past uploads.maxAge or idle and empty), with their sizes. */
  abandoned(): { id: string; size: number }[] {
    const now = Date.now();
    const ids = new Set([
      ...this.index.expiredUploads(now - this.settings.maxAgeMs),
      ...this.index.idleEmptyUploads(now - this.settings.emptyMaxAgeMs),
    ]);
    return [...ids].filter((id) => !this.busy.has(id)).map((id) => ({ id, size: this.index.uploadSize(id) ?? 0 }));
  }

  async cancel(name: RepoName, id: string): Promise<boolean> {
    if (this.index.upload(name, id) === undefined) return false;
    await this.remove(id);
    return true;
  }

  /**
   * Start-up and periodic housekeeping: expire old sessions, remove files with
   * no session, and cut every live file back to its committed length (a crash
   * mid-PATCH can leave bytes past it).
   */
  async clean(): Promise<number> {
    let removed = await this.expire();
    const live = this.index.uploadIds();
    for (const file of await this.files.listUploadFiles()) {
      if (!live.has(file) && !this.busy.has(file)) {
        await this.files.removeUpload(file);
        removed++;
      }
    }
    return removed;
  }

  /** Removes the sessions past their age, and the empty ones past theirs; never one a request is writing to. */
  private async expire(): Promise<number> {
    const now = Date.now();
    const ids = new Set([
      ...this.index.expiredUploads(now - this.settings.maxAgeMs),
      ...this.index.idleEmptyUploads(now - this.settings.emptyMaxAgeMs),
    ]);
    let removed = 0;
    for (const id of ids) {
      if (this.busy.has(id)) continue;
      await this.remove(id);
      removed++;
    }
    return removed;
  }

  async truncateAll(): Promise<void> {
    for (const id of this.index.uploadIds()) {
      const size = this.index.uploadSize(id);
      if (size === undefined) continue;
      try {
        await this.files.truncateUpload(id, size);
      } catch (error) {
        // Its closing PUT had moved the file into blobs/ when the process died, before the rows
        // changed: the session is over (the file is unindexed, for gc; the client pushes again).
        if (isNotFound(error)) this.index.deleteUpload(id);
      }
    }
  }

  private require(name: RepoName, id: string): UploadRow {
    const row = this.index.upload(name, id);
    if (row === undefined)
      throw new OciError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { detail: { id } });
    return row;
  }

  private async exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    if (this.busy.has(id)) {
      throw new OciError('BLOB_UPLOAD_INVALID', 'another request is writing to this upload', { status: 409 });
    }
    this.busy.add(id);
    try {
      return await work();
    } finally {
      this.busy.delete(id);
    }
  }

  private async appendLocked(row: UploadRow, body: AsyncIterable<Uint8Array>, range?: ChunkRange): Promise<number> {
    // A chunk must start where the upload ends (spec: out-of-order chunks get 416).
    if (range !== undefined && range.start !== row.size) {
      throw new OciError('BLOB_UPLOAD_INVALID', `chunk starts at ${range.start}, upload has ${row.size} bytes`, {
        status: 416,
        headers: { Range: formatUploadRange(row.size) },
      });
    }
    const running = this.hashes.get(row.id);
    const hash = running !== undefined && running.size === row.size ? running.hash : undefined;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: an entry is absent or current here (each append, under the session's lock, sets it to the new size or deletes it), and deleting a current one changes nothing: the end of this function sets it again, rollback() deletes it.
    if (hash === undefined) this.hashes.delete(row.id);
    let added: number;
    try {
      added = await this.files.append(row.id, body, hash);
    } catch (error) {
      await this.rollback(row);
      throw error;
    }
    if (range !== undefined && range.end - range.start + 1 !== added) {
      await this.rollback(row);
      throw new OciError(
        'SIZE_INVALID',
        `Content-Range names ${range.end - range.start + 1} bytes, body had ${added}`,
        {
          status: 416,
          headers: { Range: formatUploadRange(row.size) },
        },
      );
    }
    const size = row.size + added;
    this.index.setUploadSize(row.id, size);
    // Stryker disable next-line ObjectLiteral: an entry without hash and size is never used: the closing PUT hashes the file instead, which holds the same bytes, later.
    if (hash !== undefined) this.hashes.set(row.id, { hash, size });
    return size;
  }

  /** Forget the partial chunk: the file goes back to its committed length, the running hash is void. */
  private async rollback(row: UploadRow): Promise<void> {
    this.hashes.delete(row.id);
    await this.files.truncateUpload(row.id, row.size).catch(() => undefined);
  }

  private async remove(id: string): Promise<void> {
    this.hashes.delete(id);
    this.index.deleteUpload(id);
    this.quota.release(id);
    await this.files.removeUpload(id);
  }
}
