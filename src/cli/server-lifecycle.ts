/**
 * @module cli/server-lifecycle
 * What `serve` runs around the store's lifecycle: last-read times flushed in
 * batches, gc on its schedule (store.gc.interval), one run at a time, the
 * background scrub (store.scrub.*, ADR 0013), and the store options for
 * store.maxSize and store.pin.
 */
import type { Logger } from 'pino';
import { compileNamePattern, matchesAny } from '../registry/auth/name-pattern.js';
import type { ScrubStats } from '../store/blob-scrub.js';
import type { GcReport } from '../store/lifecycle.js';
import type { LocalStore, LocalStoreOptions } from '../store/local-store.js';
import type { IsPinnedRepository } from '../store/pinned-content.js';

export interface ServerLifecycleOptions {
  /** store.maxSize in bytes; undefined: no limit. */
  maxSizeBytes?: number;
  /** store.lowWaterMark in bytes (default 90% of maxSizeBytes). */
  lowWaterBytes?: number;
  /** store.pin: repository patterns never evicted nor collected. */
  pin?: string[];
  /** store.gc.interval; 0 or absent: no scheduled gc. */
  gcIntervalMs?: number;
  /** store.gc.grace (default 1 h). */
  gcGraceMs?: number;
  /** How long a read keeps content from gc and eviction (default content-guard.ts's; tests shorten it). */
  inUseMs?: number;
  /** store.scrub.rate in bytes per second; 0 or absent: no background scrub. */
  scrubRateBytes?: number;
  /** store.scrub.interval (default 7 days). */
  scrubIntervalMs?: number;
}

/** The scrub's budget is granted per tick: a second keeps reads small and the rate even. */
const scrubTickMs = 1000;
export const defaultScrubIntervalMs = 7 * 24 * 60 * 60 * 1000;

/**
 * Last-read times wait in memory this long at most: a crash loses at most this much LRU history,
 * and a busy mirror writes one transaction per interval instead of one row per hit.
 */
const accessFlushMs = 30_000;
export const defaultGcGraceMs = 60 * 60 * 1000;

export interface ServerLifecycle {
  runGc(options?: { graceMs?: number; dryRun?: boolean }): Promise<GcReport>;
  /** What the background scrub did (zeros when it is off). */
  scrubStats(): ScrubStats;
  /** Stops the timers, waits for a gc in progress, flushes the last-read times. */
  stop(): Promise<void>;
}

export function startLifecycle(
  store: LocalStore,
  options: ServerLifecycleOptions | undefined,
  logger: Logger,
): ServerLifecycle {
  const graceMs = options?.gcGraceMs ?? defaultGcGraceMs;
  let running: Promise<unknown> = Promise.resolve();
  const runGc = (run: { graceMs?: number; dryRun?: boolean } = {}): Promise<GcReport> => {
    const next = running.then(async () => {
      const report = await store.gc({ graceMs: run.graceMs ?? graceMs, dryRun: run.dryRun });
      logger.info(
        {
          dryRun: report.dryRun,
          manifests: report.manifests.length,
          links: report.links.length,
          blobs: report.blobs.length,
          unindexed: report.unindexed.length,
          uploads: report.uploads.length,
          bytes: report.bytes,
        },
        report.dryRun ? 'gc (dry run): what would go' : 'gc: done',
      );
      return report;
    });
    running = next.catch(() => undefined);
    return next;
  };
  const flusher = setInterval(() => {
    try {
      store.flushAccessTimes();
    } catch (error) {
      logger.warn({ err: error }, 'could not write last-read times; keeping them in memory');
    }
  }, accessFlushMs);
  flusher.unref();
  const interval = options?.gcIntervalMs ?? 0;
  const scheduled =
    interval > 0
      ? setInterval(() => {
          runGc().catch((error: unknown) => logger.warn({ err: error }, 'scheduled gc failed'));
        }, interval)
      : undefined;
  scheduled?.unref();
  const scrub = startScrub(store, options, logger);
  return {
    runGc,
    scrubStats: scrub.stats,
    async stop() {
      clearInterval(flusher);
      if (scheduled !== undefined) clearInterval(scheduled);
      await scrub.stop();
      await running;
      store.flushAccessTimes();
    },
  };
}

/**
 * One scrub tick a second, each started only when the previous one is done (a slow disk lowers
 * the rate, it never piles up ticks). Off when store.scrub.rate is 0.
 */
function startScrub(
  store: LocalStore,
  options: ServerLifecycleOptions | undefined,
  logger: Logger,
): { stats: () => ScrubStats; stop: () => Promise<void> } {
  const rateBytes = options?.scrubRateBytes ?? 0;
  if (rateBytes <= 0) return { stats: () => ({ bytes: 0, blobs: 0, corrupt: 0 }), stop: () => Promise.resolve() };
  const scrub = store.createScrub(
    { rateBytes, intervalMs: options?.scrubIntervalMs ?? defaultScrubIntervalMs },
    logger,
  );
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> = Promise.resolve();
  const schedule = (): void => {
    timer = setTimeout(() => {
      ticking = scrub
        .tick(scrubTickMs)
        .then(
          () => undefined,
          (error: unknown) => logger.warn({ err: error }, 'scrub tick failed'),
        )
        .finally(() => {
          if (!stopped) schedule();
        });
    }, scrubTickMs);
    timer.unref();
  };
  schedule();
  return {
    stats: () => ({ ...scrub.stats }),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await ticking;
      await scrub.close();
    },
  };
}

/** The LocalStore options for store.maxSize and store.pin. */
export function lifecycleStoreOptions(
  options: ServerLifecycleOptions | undefined,
  logger: Logger,
): Pick<LocalStoreOptions, 'lifecycle' | 'inUseMs'> {
  const max = options?.maxSizeBytes;
  return {
    lifecycle: {
      space:
        max === undefined
          ? undefined
          : { maxBytes: max, lowWaterBytes: options?.lowWaterBytes ?? Math.floor(max * 0.9) },
      isPinned: pinnedRepositoryTest(options?.pin),
      logger,
    },
    inUseMs: options?.inUseMs,
  };
}

/** store.pin as the store's predicate (store/pinned-content.ts): serve, gc and du/stats all use this one. */
export function pinnedRepositoryTest(patterns: readonly string[] | undefined): IsPinnedRepository {
  const pins = (patterns ?? []).map(compileNamePattern);
  return pins.length === 0 ? () => false : (repository) => matchesAny(pins, repository);
}
