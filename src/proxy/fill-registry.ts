/**
 * @module proxy/fill-registry
 * Single-flight blob fills. The first request for a missing blob starts one
 * upstream download into a temp file; every request for the same digest,
 * first included, reads that file as it grows and waits for more. The final
 * byte is held back until the digest matched, so no client ever receives a
 * complete body with the wrong content; on a mismatch or a broken upstream the
 * readers' streams fail (their connections are cut) and nothing is kept.
 *
 * The fill belongs to this registry, not to the client that started it: when
 * that client disconnects, the download goes on for the others and for the
 * cache. N simultaneous cold pulls of a blob cost exactly one upstream GET.
 */
import type { Digest } from '../oci/digest.js';
import { OciError, isOutOfSpace, outOfSpace } from '../oci/errors.js';
import type { BlobHandle, ByteRange } from '../oci/image-source.js';
import type { Logger } from '../oci/logger.js';
import type { RepoName } from '../oci/reference.js';
import type { BlobFill } from '../store/blob-fill.js';
import type { LocalStore } from '../store/local-store.js';
import type { UpstreamBlob } from './upstream-client.js';

/** Bytes per read from the growing file: large enough for few syscalls, small enough to stream promptly. */
const readChunkBytes = 1024 * 1024;
/**
 * Upstream chunks are gathered into writes of about this size: one write per
 * 64 KiB chunk held a cold fill near 130 MB/s; batching lets it run at disk speed.
 */
const writeBatchBytes = 1024 * 1024;

export interface FillStats {
  started: number;
  completed: number;
  failed: number;
}

class Fill {
  readonly names = new Set<RepoName>();
  /**
   * running → verified (digest matched: readers may finish) → done (file committed and indexed);
   * or → failed at any point before done.
   */
  state: 'running' | 'verified' | 'done' | 'failed' = 'running';
  error: unknown;
  private waiters: (() => void)[] = [];

  constructor(
    readonly digest: Digest,
    readonly size: number,
    private readonly file: BlobFill,
    private readonly store: LocalStore,
  ) {}

  /** Copies the upstream body into the file; never rejects (the verdict is in `state`). */
  async pump(upstream: UpstreamBlob): Promise<void> {
    try {
      let batch: Uint8Array[] = [];
      let batched = 0;
      for await (const chunk of upstream.body) {
        if (this.file.written + batched + chunk.byteLength > this.size) {
          throw new OciError('SIZE_INVALID', 'upstream sent more bytes than it announced', {
            detail: { digest: this.digest, size: this.size },
          });
        }
        batch.push(chunk);
        batched += chunk.byteLength;
        if (batched >= writeBatchBytes) {
          await this.file.append(batch);
          batch = [];
          batched = 0;
          this.wake();
        }
      }
      if (batched > 0) await this.file.append(batch);
      this.file.verify(this.size);
      // The bytes are proven: let readers finish while the file is fsynced and committed (the
      // fsync of a large file is the slowest step of a fill, and no reader needs to wait for it).
      this.state = 'verified';
      this.wake();
      const info = await this.file.commit();
      this.store.recordFill(this.names, info.digest, info.size);
      this.state = 'done';
    } catch (error) {
      this.error = error;
      this.state = 'failed';
      await upstream.cancel().catch(() => undefined);
      await this.file.abort();
    } finally {
      this.wake();
    }
  }

  async *read(range: ByteRange | undefined): AsyncGenerator<Uint8Array> {
    if (this.state === 'done' || !this.file.acquire()) {
      // Committed already (or the temp file is gone): read the blob file itself.
      if (this.state === 'failed') throw this.failure();
      yield* this.store.readContent(this.digest, range);
      return;
    }
    try {
      let position = range?.start ?? 0;
      const end = range === undefined ? this.size : range.end + 1;
      while (position < end) {
        // Re-read each turn: the pump moves the state on while this generator waits.
        const state = this.currentState();
        if (state === 'failed') throw this.failure();
        // Hold back the last byte until the verdict: a complete body means a verified body.
        const limit = state === 'running' ? Math.min(this.file.written, this.size - 1) : this.size;
        const available = Math.min(limit, end) - position;
        if (available <= 0) {
          await this.progress();
          continue;
        }
        const chunk = await this.file.read(position, Math.min(available, readChunkBytes));
        position += chunk.byteLength;
        yield chunk;
      }
    } finally {
      await this.file.release();
    }
  }

  /** What a reader of a failed fill sees: the upstream's fault, never the client's (a DIGEST_INVALID would read as one). */
  private failure(): OciError {
    if (isOutOfSpace(this.error)) return outOfSpace(this.error);
    return new OciError('UNAVAILABLE', 'the upstream blob failed verification or transfer; nothing was kept', {
      status: 502,
      cause: this.error,
      detail: { digest: this.digest },
    });
  }

  private currentState(): Fill['state'] {
    return this.state;
  }

  private progress(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const resolve of waiting) resolve();
  }
}

export class FillRegistry {
  readonly stats: FillStats = { started: 0, completed: 0, failed: 0 };
  private readonly fills = new Map<Digest, Promise<Fill | undefined>>();
  private readonly pumps = new Set<Promise<void>>();

  constructor(
    private readonly store: LocalStore,
    private readonly logger: Logger,
  ) {}

  get inFlight(): number {
    return this.fills.size;
  }

  /** Waits for every fill to finish or fail (shutdown: the index must stay open until they are recorded). */
  async settle(): Promise<void> {
    while (this.pumps.size > 0) await Promise.all([...this.pumps]);
  }

  /**
   * A handle on the blob, filling it from `fetch` unless a fill is already
   * running. undefined when the upstream does not have it.
   */
  async open(
    digest: Digest,
    name: RepoName,
    fetch: () => Promise<UpstreamBlob | undefined>,
  ): Promise<BlobHandle | undefined> {
    let pending = this.fills.get(digest);
    if (pending === undefined) {
      pending = this.start(digest, fetch);
      this.fills.set(digest, pending);
      // A failed start is forgotten at once so the next request tries again.
      pending.then(
        (fill) => (fill === undefined ? this.fills.delete(digest) : undefined),
        () => this.fills.delete(digest),
      );
    }
    const fill = await pending;
    if (fill === undefined) return undefined;
    if (fill.state === 'done') this.store.linkBlob(name, digest);
    else fill.names.add(name);
    return { digest, size: fill.size, open: (range) => fill.read(range) };
  }

  private async start(digest: Digest, fetch: () => Promise<UpstreamBlob | undefined>): Promise<Fill | undefined> {
    const upstream = await fetch();
    if (upstream === undefined) return undefined;
    if (upstream.size === undefined) {
      await upstream.cancel();
      throw new OciError('UNAVAILABLE', 'upstream sent a blob without Content-Length', { detail: { digest } });
    }
    let file: BlobFill;
    try {
      file = await this.store.startFill(digest);
    } catch (error) {
      await upstream.cancel();
      throw error;
    }
    const fill = new Fill(digest, upstream.size, file, this.store);
    this.stats.started++;
    const pump = fill.pump(upstream).then(() => {
      this.fills.delete(digest);
      if (fill.state === 'done') {
        this.stats.completed++;
        this.logger.debug({ digest, size: fill.size }, 'blob filled from upstream');
      } else {
        this.stats.failed++;
        this.logger.warn({ err: fill.error, digest }, 'blob fill from upstream failed; nothing kept');
      }
    });
    this.pumps.add(pump);
    void pump.finally(() => this.pumps.delete(pump));
    return fill;
  }
}
