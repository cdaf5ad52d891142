/**
 * @module proxy/fill-registry
 * Single-flight blob fills. The first request for a missing blob starts one
 * upstream download into a temp file; every request for the same digest,
 * first included, reads that file as it grows and waits for more. The final
 * byte is held back until the digest matched, so no client ever receives a
 * complete body with the wrong content; on a mismatch or a broken upstream the
 * readers' streams fail (their connections are cut) and nothing is kept.
 *
 * A read of a part that stops short of the end (a Range request), or of an
 * empty blob, proves nothing about the digest when it completes: it waits for
 * the verdict before its first byte, so only verified bytes complete a response.
 *
 * The fill belongs to this registry, not to the client that started it: when
 * that client disconnects, the download goes on for the others and for the
 * cache. N simultaneous cold pulls of a blob cost exactly one upstream GET.
 * At most `maxConcurrent` fills download at once; later ones wait their turn
 * (FIFO), and a request for a blob already being filled joins it without queueing.
 * A fill may also start before any client asks (`prefetch`, see prefetch.ts): it runs
 * the same way, and the client requests that follow join it.
 */
import type { Digest } from '../oci/digest.js';
import { OciError, isOutOfSpace, outOfSpace } from '../oci/errors.js';
import type { BlobFile, BlobHandle, ByteRange } from '../oci/image-source.js';
import type { Logger } from '../oci/logger.js';
import type { RepoName } from '../oci/reference.js';
import type { BlobFill } from '../store/blob-fill.js';
import type { LocalStore } from '../store/local-store.js';
import type { Reservation } from '../store/space-limit.js';
import { FillQueue } from './fill-queue.js';
import type { UpstreamBlob } from './upstream-client.js';

/** Bytes per chunk for readers that want an iterable (`BlobHandle.open`) rather than positioned reads. */
// Stryker disable next-line ArithmeticOperator: a read size; any size gives the same bytes (only speed and memory change).
const readChunkBytes = 1024 * 1024;
/**
 * Upstream chunks are gathered into writes of about this size: one write per
 * 64 KiB chunk held a cold fill near 130 MB/s; batching lets it run at disk speed.
 */
// Stryker disable next-line ArithmeticOperator: a write size; any size writes the same bytes in order (bench scenario 3 measures the speed).
const writeBatchBytes = 1024 * 1024;
/**
 * The most recent upstream bytes stay in memory, shared by every reader of the
 * fill: a client that keeps up with the upstream is served from here without
 * waiting for the temp file write or reading it back. Readers further behind
 * read the file. Per fill, not per reader, so 20 clients cost one window.
 */
const memoryWindowBytes = 2 * 1024 * 1024;
/**
 * Read size offered to the HTTP layer for a fill: its readers mostly copy from
 * the window, so small buffers cost little speed, and one cold layer often has
 * many readers at once. 20 clients of a cold 1 GiB blob (bench scenario 6)
 * peaked at 141-149 MiB RSS with 256 KiB buffers, a 4 MiB window and 4 MiB of
 * upstream read-ahead, and at 129-131 MiB with these, 2 MiB and 1 MiB, with no
 * measurable change in a single client's cold GET (~400 MB/s here).
 */
const fillReadBytes = 128 * 1024;

/**
 * Concurrent upstream fills by default. A client pull downloads 3 layers at a
 * time (docker's max-concurrent-downloads, containerd's default) to 6 (skopeo),
 * so 8 keeps two or three cold pulls at full parallelism; more streams seldom add
 * throughput once the upstream link is full. Each fill holds about 3 MiB (window,
 * read-ahead, socket), so the bound also caps fill memory near 25 MiB, and 200
 * cold requests cost 8 upstream downloads at a time rather than 200.
 */
export const defaultMaxConcurrentFills = 8;

export interface FillRegistryOptions {
  /** Upstream downloads running at once; more wait in a FIFO queue (default defaultMaxConcurrentFills). */
  maxConcurrent?: number;
}

export interface FillStats {
  started: number;
  completed: number;
  failed: number;
}

/** Fills started ahead of the client (prefetch.ts), and what became of them. */
export interface PrefetchStats {
  /** Fills a prefetch started. */
  started: number;
  /** Client requests that found a prefetch's fill running or queued and joined it. */
  joined: number;
  /** Prefetch fills that did not end with a stored blob (upstream error, 404, bad digest); nothing kept. */
  failed: number;
}

class Fill {
  /**
   * running → verified (digest matched: readers may finish) → done (file committed and indexed);
   * or → failed at any point before done.
   */
  state: 'running' | 'verified' | 'done' | 'failed' = 'running';
  error: unknown;
  /** Bytes received from the upstream; readers see them at once (all but the held-back last byte). */
  private received = 0;
  /** Recent upstream chunks, contiguous, ending at `received`; the first starts at `windowStart`. */
  private window: Uint8Array[] = [];
  private windowStart = 0;
  private waiters: (() => void)[] = [];
  private reachVerdict: () => void = () => undefined;
  /** Settles once the state left 'running': the digest matched, or the fill failed. */
  private readonly verdict = new Promise<void>((resolve) => (this.reachVerdict = resolve));

  constructor(
    readonly digest: Digest,
    readonly size: number,
    /** The names that asked for the blob: each is linked to it once it is committed. */
    readonly names: Set<RepoName>,
    private readonly file: BlobFill,
    private readonly store: LocalStore,
  ) {}

  /** Upstream bytes this fill holds in memory (its window and the batch being gathered). */
  get heldBytes(): number {
    return this.received - this.windowStart;
  }

  /** Copies the upstream body into the file; never rejects (the verdict is in `state`). */
  async pump(upstream: UpstreamBlob): Promise<void> {
    // One file write in flight while the next batch arrives: the file is still written in order.
    let writing: Promise<void> = Promise.resolve();
    try {
      let batch: Uint8Array[] = [];
      let batched = 0;
      for await (const chunk of upstream.body) {
        if (this.received + chunk.byteLength > this.size) {
          throw new OciError('SIZE_INVALID', 'upstream sent more bytes than it announced', {
            detail: { digest: this.digest, size: this.size },
          });
        }
        this.window.push(chunk);
        this.received += chunk.byteLength;
        this.wake();
        batch.push(chunk);
        batched += chunk.byteLength;
        if (batched >= writeBatchBytes) {
          await writing;
          this.trimWindow();
          // Readers wait for the first write (see readInto): wake them when one lands.
          writing = this.file.append(batch).then(() => this.wake());
          // Awaited on the next batch or at the end; this only keeps a failure from counting as unhandled meanwhile.
          writing.catch(() => undefined);
          batch = [];
          batched = 0;
        }
      }
      await writing;
      // Stryker disable next-line ConditionalExpression,EqualityOperator: appending an empty batch writes nothing.
      if (batched > 0) await this.file.append(batch);
      this.file.verify(this.size);
      // The bytes are proven: let readers finish while the file is fsynced and committed (the
      // fsync of a large file is the slowest step of a fill, and no reader needs to wait for it).
      // Stryker disable next-line StringLiteral: readers only ask whether the state is 'running' or 'failed'; any other value releases the last byte the same way.
      this.state = 'verified';
      this.reachVerdict();
      this.wake();
      await this.store.commitFill(this.file, this.names);
      this.state = 'done';
    } catch (error) {
      this.error = error;
      this.state = 'failed';
      await writing.catch(() => undefined);
      await upstream.cancel().catch(() => undefined);
      await this.file.abort();
    } finally {
      // Readers still open go on from the file (done) or see the failure; the memory goes now.
      // Stryker disable next-line ArrayDeclaration: windowStart moves to the end below, so no read looks into the window again.
      this.window = [];
      this.windowStart = this.received;
      this.reachVerdict();
      this.wake();
    }
  }

  /**
   * Positioned reads of the growing blob for one reader, which must close it.
   * A read waits until bytes at `position` exist, and never returns the last
   * byte before the digest matched: a complete body means a verified body.
   * `range`, when the reader wants only part: one that ends before the last
   * byte (and any read of an empty blob) could complete without that check,
   * so it waits for the verdict here, before its first byte and status line.
   */
  async openFile(range?: ByteRange): Promise<BlobFile> {
    if (this.size === 0 || (range !== undefined && range.end < this.size - 1)) {
      await this.verdict;
      // Stryker disable next-line ConditionalExpression,StringLiteral: the check below gives a failed fill the same answer (or, while another reader holds its file, its first read does); this one only answers earlier.
      if (this.state === 'failed') throw this.failure();
    }
    // Stryker disable next-line ConditionalExpression,StringLiteral: a committed fill's temp descriptor reads the same bytes as the stored file, and is closed (acquire() false) once no reader holds it.
    if (this.state === 'done' || !this.file.acquire()) {
      // Committed already (or the temp file is gone): read the blob file itself.
      if (this.state === 'failed') throw this.failure();
      return this.store.openContentFile(this.digest);
    }
    let closed = false;
    return {
      read: (buffer, position) => this.readInto(buffer, position),
      chunkBytes: fillReadBytes,
      close: async () => {
        if (closed) return;
        closed = true;
        await this.file.release();
      },
    };
  }

  async *read(range: ByteRange | undefined): AsyncGenerator<Uint8Array> {
    const file = await this.openFile(range);
    try {
      let position = range?.start ?? 0;
      const end = range === undefined ? this.size : range.end + 1;
      while (position < end) {
        const buffer = Buffer.allocUnsafe(Math.min(readChunkBytes, end - position));
        const bytes = await file.read(buffer, position);
        if (bytes === 0) throw new Error(`blob file ended early at byte ${position}`);
        position += bytes;
        // Stryker disable next-line ConditionalExpression: a subarray of the whole buffer is the same bytes.
        yield bytes === buffer.byteLength ? buffer : buffer.subarray(0, bytes);
      }
    } finally {
      await file.close();
    }
  }

  private async readInto(buffer: Uint8Array, position: number): Promise<number> {
    if (position >= this.size) return 0;
    for (;;) {
      // Re-read each turn: the pump moves the state on while this reader waits.
      const state = this.currentState();
      if (state === 'failed') throw this.failure();
      // Nothing leaves before the first bytes reached the temp file, so a full disk is answered with
      // 507 before the status line rather than a cut mid-body; then the held-back last byte.
      const limit =
        state !== 'running' ? this.size : this.file.written === 0 ? 0 : Math.min(this.received, this.size - 1);
      if (position < limit) {
        const wanted = Math.min(buffer.byteLength, limit - position);
        if (position >= this.windowStart) return this.copyFromWindow(buffer, position, wanted);
        // Behind the window: those bytes were written to the file before they left it.
        return this.file.readInto(buffer.subarray(0, Math.min(wanted, this.windowStart - position)), position);
      }
      await this.progress();
    }
  }

  private copyFromWindow(buffer: Uint8Array, position: number, wanted: number): number {
    let offset = this.windowStart;
    let copied = 0;
    for (const chunk of this.window) {
      const chunkEnd = offset + chunk.byteLength;
      // Stryker disable next-line EqualityOperator,ArithmeticOperator: a chunk ending exactly at the position copies 0 bytes; chunks before the position are all skipped before the first copy, when copied is 0.
      if (chunkEnd > position + copied) {
        const from = position + copied - offset;
        const length = Math.min(chunk.byteLength - from, wanted - copied);
        buffer.set(chunk.subarray(from, from + length), copied);
        copied += length;
        // Stryker disable next-line ConditionalExpression,EqualityOperator: a read may return fewer bytes than asked (readers loop), and once copied === wanted every later chunk copies 0 bytes.
        if (copied === wanted) break;
      }
      offset = chunkEnd;
    }
    return copied;
  }

  /** Drops the oldest chunks beyond the window size, but only those the file holds already. */
  private trimWindow(): void {
    let held = this.received - this.windowStart;
    while (this.window.length > 0) {
      const first = this.window[0] as Uint8Array;
      if (held - first.byteLength < memoryWindowBytes) break;
      // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: the window (2 MiB) is larger than the one write in flight (1 MiB) and trimming runs after that write landed, so the size rule above never drops an unwritten chunk; this keeps it so if the sizes change.
      if (this.windowStart + first.byteLength > this.file.written) break;
      this.window.shift();
      this.windowStart += first.byteLength;
      held -= first.byteLength;
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

/** A fill from the first request on: queued, asking the upstream, then running. */
interface Pending {
  fill: Promise<Fill | undefined>;
  names: Set<RepoName>;
  /** Started by a prefetch, not by a client: a client that joins it may try again on its own if it fails to start. */
  prefetch: boolean;
  /** A client joined it: it is no longer a prefetch nobody waits for. */
  joined: boolean;
  /** Aborts the upstream request of a prefetch nobody joined (at shutdown). */
  abort: AbortController | undefined;
}

export class FillRegistry {
  readonly stats: FillStats = { started: 0, completed: 0, failed: 0 };
  readonly prefetchStats: PrefetchStats = { started: 0, joined: 0, failed: 0 };
  private readonly fills = new Map<Digest, Pending>();
  private readonly pumps = new Set<Promise<void>>();
  /** Fills whose pump runs: what `heldBytes` adds up. */
  private readonly running = new Set<Fill>();
  private readonly queue: FillQueue;
  /** settle() was called: new prefetches are not started. */
  private closing = false;

  constructor(
    private readonly store: LocalStore,
    private readonly logger: Logger,
    options: FillRegistryOptions = {},
  ) {
    this.queue = new FillQueue(options.maxConcurrent ?? defaultMaxConcurrentFills);
  }

  /** Fills queued or running. */
  get inFlight(): number {
    return this.fills.size;
  }

  /**
   * Upstream bytes held in memory by every running fill: each holds its window (memoryWindowBytes)
   * and the write batch being gathered, whatever the blob size and however many clients read it.
   */
  get heldBytes(): number {
    let held = 0;
    for (const fill of this.running) held += fill.heldBytes;
    return held;
  }

  /** Fills waiting for a slot. */
  get queued(): number {
    return this.queue.queued;
  }

  /** Whether a fill of the blob is queued or running, for any name. */
  isFilling(digest: Digest): boolean {
    return this.fills.has(digest);
  }

  /** Whether a fill of the blob is queued or running and `name` asked for it. */
  isFillingFor(digest: Digest, name: RepoName): boolean {
    return this.fills.get(digest)?.names.has(name) === true;
  }

  /**
   * Waits for every fill, queued ones included, to finish or fail (shutdown: the index must stay
   * open until they are recorded; a queued fill that started after the index closed could not be).
   */
  async settle(): Promise<void> {
    // Prefetches no client joined are not worth a shutdown's wait (a large layer, a hung upstream): cancelled, they keep nothing.
    this.closing = true;
    // Stryker disable next-line OptionalChaining: a fill nobody joined is a prefetch, which always has an AbortController.
    for (const pending of this.fills.values()) if (!pending.joined) pending.abort?.abort();
    // Stryker disable next-line ConditionalExpression: a running fill's entry leaves `fills` in its pump's last step, so waiting for `fills` alone waits for the pumps too.
    while (this.pumps.size > 0 || this.fills.size > 0) {
      const starts = [...this.fills.values()].map((pending) => pending.fill.catch(() => undefined));
      // A start that resolves has handed its pump over (waited for on the next turn) or failed.
      await Promise.all([...this.pumps, ...starts]);
    }
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
    const pending = this.fills.get(digest) ?? this.begin(digest, fetch);
    // Known before the fill starts, so the name is linked whenever the blob is committed.
    pending.names.add(name);
    let fill: Fill | undefined;
    if (pending.prefetch) {
      if (!pending.joined) this.prefetchStats.joined++;
      pending.joined = true;
      // A prefetch that could not start (an upstream error, a 404) must cost the client nothing:
      // the client asks again on its own, as it would have without the prefetch. (One that breaks
      // mid-body breaks its readers, as a fill the client started would have.)
      fill = await pending.fill.catch(() => undefined);
      if (fill === undefined) return this.open(digest, name, fetch);
    } else {
      fill = await pending.fill;
    }
    if (fill === undefined) return undefined;
    // Committed before this request joined: the link must be made here.
    // Stryker disable next-line ConditionalExpression,StringLiteral: a guard; a name added before the commit is linked by it, and a fill leaves the map in the same chain of microtasks that commits it, before any new request can join.
    if (fill.state === 'done') this.store.linkBlob(name, digest);
    return { digest, size: fill.size, open: (range) => fill.read(range), openFile: (range) => fill.openFile(range) };
  }

  /**
   * Starts a fill of the blob for `name` ahead of any client (prefetch.ts), in the same queue and
   * limit as every fill; false (nothing started) when one is queued or running already. Never
   * rejects: a prefetch that fails is counted and logged, and keeps nothing.
   */
  prefetch(digest: Digest, name: RepoName, fetch: (signal: AbortSignal) => Promise<UpstreamBlob | undefined>): boolean {
    if (this.closing || this.fills.has(digest)) return false;
    const abort = new AbortController();
    const pending = this.begin(digest, () => fetch(abort.signal), abort);
    pending.names.add(name);
    this.prefetchStats.started++;
    // Info, not warn: the client's own request asks again, and warns if that fails too.
    pending.fill.then(
      (fill) => {
        if (fill !== undefined) return;
        this.prefetchStats.failed++;
        if (abort.signal.aborted) return;
        this.logger.info({ digest, name }, 'prefetch: the upstream does not have a blob its manifest names');
      },
      (error: unknown) => {
        this.prefetchStats.failed++;
        if (abort.signal.aborted) return;
        this.logger.info({ err: error, digest, name }, 'prefetch of a blob failed to start; nothing kept');
      },
    );
    return true;
  }

  /**
   * Registers a new fill of `digest` (a prefetch when `abort` is given); a start that fails or
   * finds nothing is forgotten at once.
   */
  private begin(digest: Digest, fetch: () => Promise<UpstreamBlob | undefined>, abort?: AbortController): Pending {
    const names = new Set<RepoName>();
    const prefetch = abort !== undefined;
    const started: Pending = {
      fill: this.start(digest, names, fetch, abort?.signal),
      names,
      prefetch,
      joined: !prefetch,
      abort,
    };
    this.fills.set(digest, started);
    // Forgotten so the next request tries again. Registered before any caller awaits the fill, so
    // a caller that sees the failure already finds the entry gone.
    const forget = (): void => {
      // Stryker disable next-line ConditionalExpression: no newer fill of the digest can be registered before a failed start is forgotten (the entry is in the map until then); the check is a guard.
      if (this.fills.get(digest) === started) this.fills.delete(digest);
    };
    started.fill.then((fill) => (fill === undefined ? forget() : undefined), forget);
    return started;
  }

  /** Waits for a slot (FIFO), then asks the upstream; the slot is held until the fill ends. */
  private async start(
    digest: Digest,
    names: Set<RepoName>,
    fetch: () => Promise<UpstreamBlob | undefined>,
    /** A prefetch's: aborted at shutdown unless a client joined. */
    signal: AbortSignal | undefined,
  ): Promise<Fill | undefined> {
    await this.queue.acquire();
    let pump: Promise<void> | undefined;
    try {
      // Cancelled while it waited for its slot: no request at all.
      if (signal?.aborted === true) return undefined;
      const upstream = await fetch();
      if (upstream === undefined) return undefined;
      if (upstream.size === undefined) {
        await upstream.cancel();
        throw new OciError('UNAVAILABLE', 'upstream sent a blob without Content-Length', { detail: { digest } });
      }
      let file: BlobFill;
      let reservation: Reservation;
      try {
        // store.maxSize: room is made (or the fill refused with 507) before a byte is written.
        reservation = await this.store.reserveSpace(upstream.size);
      } catch (error) {
        await upstream.cancel();
        throw error;
      }
      try {
        file = await this.store.startFill(digest);
      } catch (error) {
        reservation.release();
        await upstream.cancel();
        throw error;
      }
      const fill = new Fill(digest, upstream.size, names, file, this.store);
      this.stats.started++;
      pump = this.watch(fill, fill.pump(upstream), reservation, signal);
      return fill;
    } finally {
      if (pump === undefined) this.queue.release();
    }
  }

  /** Records the outcome of a fill's pump and frees its slot. */
  private watch(
    fill: Fill,
    pumping: Promise<void>,
    reservation: Reservation,
    prefetch: AbortSignal | undefined,
  ): Promise<void> {
    const digest = fill.digest;
    this.running.add(fill);
    const pump = pumping.then(() => {
      this.running.delete(fill);
      // Committed: the index counts the bytes now; failed: nothing was kept.
      reservation.release();
      this.queue.release();
      this.fills.delete(digest);
      if (fill.state === 'done') {
        this.stats.completed++;
        this.logger.debug({ digest, size: fill.size }, 'blob filled from upstream');
      } else {
        this.stats.failed++;
        if (prefetch === undefined) {
          this.logger.warn({ err: fill.error, digest }, 'blob fill from upstream failed; nothing kept');
          return;
        }
        this.prefetchStats.failed++;
        if (prefetch.aborted) this.logger.info({ digest }, 'prefetch cancelled at shutdown; nothing kept');
        else
          this.logger.warn({ err: fill.error, digest, prefetch: true }, 'blob fill from upstream failed; nothing kept');
      }
    });
    this.pumps.add(pump);
    void pump.finally(() => this.pumps.delete(pump));
    return pump;
  }
}
