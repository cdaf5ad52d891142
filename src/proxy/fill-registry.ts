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
import { OciError } from '../oci/errors.js';
import type { BlobHandle, ByteRange } from '../oci/image-source.js';
import type { Logger } from '../oci/logger.js';
import type { RepoName } from '../oci/reference.js';
import type { BlobFill } from '../store/blob-fill.js';
import type { LocalStore } from '../store/local-store.js';
import type { UpstreamBlob } from './upstream-client.js';

/** Bytes per read from the growing file: large enough for few syscalls, small enough to stream promptly. */
const readChunkBytes = 1024 * 1024;

export interface FillStats {
  started: number;
  completed: number;
  failed: number;
}

class Fill {
  readonly names = new Set<RepoName>();
  state: 'running' | 'done' | 'failed' = 'running';
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
      for await (const chunk of upstream.body) {
        if (this.file.written + chunk.byteLength > this.size) {
          throw new OciError('SIZE_INVALID', 'upstream sent more bytes than it announced', {
            detail: { digest: this.digest, size: this.size },
          });
        }
        await this.file.append(chunk);
        this.wake();
      }
      const info = await this.file.finish(this.size);
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
      if (this.state === 'failed') throw this.error;
      yield* this.store.readContent(this.digest, range);
      return;
    }
    try {
      let position = range?.start ?? 0;
      const end = range === undefined ? this.size : range.end + 1;
      while (position < end) {
        // Re-read each turn: the pump moves the state on while this generator waits.
        const state = this.currentState();
        if (state === 'failed') throw this.error;
        // Hold back the last byte until the verdict: a complete body means a verified body.
        const limit = state === 'done' ? this.size : Math.min(this.file.written, this.size - 1);
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

  constructor(
    private readonly store: LocalStore,
    private readonly logger: Logger,
  ) {}

  get inFlight(): number {
    return this.fills.size;
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
    void fill.pump(upstream).then(() => {
      this.fills.delete(digest);
      if (fill.state === 'done') {
        this.stats.completed++;
        this.logger.debug({ digest, size: fill.size }, 'blob filled from upstream');
      } else {
        this.stats.failed++;
        this.logger.warn({ err: fill.error, digest }, 'blob fill from upstream failed; nothing kept');
      }
    });
    return fill;
  }
}
