/**
 * @module cli/metrics
 * wharf's Prometheus metrics (prom-client), on a registry of their own (so
 * several servers in one process, as in the tests, never share counters). The
 * HTTP layer and the upstream clients report through plain callbacks
 * (registry/request-log.ts, upstream/upstream-config.ts); gauges that describe
 * the state (fills, store size) are read when scraped. Label values come from
 * small closed sets (route class, method, status, configured upstream host).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RequestMetrics } from './request-metrics.js';
import type { UpstreamExchange } from '../upstream/upstream-config.js';

/** What the scrape reads from the running server. */
export interface MetricsSources {
  fills(): {
    inFlight: number;
    queued: number;
    stats: { started: number; completed: number; failed: number };
    prefetchStats: { started: number; joined: number; failed: number };
  };
  storeUsage(): { bytes: number; blobs: number };
  /** Eviction and gc counts (store/lifecycle.ts) and store.maxSize (undefined: no limit). */
  lifecycle?(): { evictions: number; evictedBytes: number; gcRuns: number; gcBytes: number; limitBytes?: number };
  /** What the background scrub did (store/blob-scrub.ts). */
  scrub?(): { bytes: number; blobs: number; corrupt: number };
}

const upstreamBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class WharfMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources | undefined;
  private readonly requests = new RequestMetrics();
  private readonly upstreamRequests: Counter<'upstream' | 'method' | 'status'>;
  private readonly upstreamErrors: Counter<'upstream'>;
  private readonly upstreamSeconds: Histogram<'upstream'>;
  /** prom-client hashes label values on every call: the children are kept, keyed by their labels. */
  private readonly counters = new Map<string, { inc(value?: number): void }>();
  private readonly histograms = new Map<string, { observe(value: number): void }>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests.register(this.registry);
    this.upstreamRequests = new Counter({
      name: 'wharf_upstream_requests_total',
      help: 'Requests to upstream registries (token services and redirects included), by status ("none": no answer)',
      labelNames: ['upstream', 'method', 'status'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'wharf_upstream_errors_total',
      help: 'Upstream requests that got no answer, a 5xx or a 429',
      labelNames: ['upstream'],
      registers,
    });
    this.upstreamSeconds = new Histogram({
      name: 'wharf_upstream_request_duration_seconds',
      help: 'Time to the response headers of an upstream request',
      labelNames: ['upstream'],
      buckets: upstreamBuckets,
      registers,
    });
    const sources = (): MetricsSources | undefined => this.sources;
    new Gauge({
      name: 'wharf_fills_in_flight',
      help: 'Blob fills from upstreams queued or running',
      registers,
      collect() {
        this.set(sources()?.fills().inFlight ?? 0);
      },
    });
    new Gauge({
      name: 'wharf_fills_queued',
      help: 'Blob fills waiting for a slot (mirror.maxConcurrentFills)',
      registers,
      collect() {
        this.set(sources()?.fills().queued ?? 0);
      },
    });
    // Counts kept by the fill registry, exposed as counters: each scrape adds what happened since the last.
    const seen = { started: 0, completed: 0, failed: 0 };
    new Counter({
      name: 'wharf_fills_total',
      help: 'Blob fills from upstreams by outcome (started, completed, failed)',
      labelNames: ['outcome'],
      registers,
      collect() {
        const stats = sources()?.fills().stats;
        if (stats === undefined) return;
        for (const outcome of ['started', 'completed', 'failed'] as const) {
          this.inc({ outcome }, stats[outcome] - seen[outcome]);
          seen[outcome] = stats[outcome];
        }
      },
    });
    const prefetchSeen = { started: 0, joined: 0, failed: 0 };
    new Counter({
      name: 'wharf_prefetch_blobs_total',
      help: 'Blob fills started ahead of the client from a cold image manifest (started), client requests that joined one (joined), and those that kept nothing (failed)',
      labelNames: ['outcome'],
      registers,
      collect() {
        const stats = sources()?.fills().prefetchStats;
        if (stats === undefined) return;
        for (const outcome of ['started', 'joined', 'failed'] as const) {
          this.inc({ outcome }, stats[outcome] - prefetchSeen[outcome]);
          prefetchSeen[outcome] = stats[outcome];
        }
      },
    });
    new Gauge({
      name: 'wharf_store_bytes',
      help: 'Bytes of the blob and manifest files the index knows',
      registers,
      collect() {
        this.set(sources()?.storeUsage().bytes ?? 0);
      },
    });
    new Gauge({
      name: 'wharf_store_blobs',
      help: 'Blob and manifest files the index knows',
      registers,
      collect() {
        this.set(sources()?.storeUsage().blobs ?? 0);
      },
    });
    this.registerLifecycle(registers, sources);
  }

  /** Evictions, gc and the store's limit: counts kept by the store, exposed as counters at scrape time. */
  private registerLifecycle(registers: Registry[], sources: () => MetricsSources | undefined): void {
    const counted = [
      ['wharf_evictions_total', 'Images evicted to keep the store under store.maxSize', 'evictions'],
      ['wharf_evicted_bytes_total', 'Bytes of blob files freed by eviction', 'evictedBytes'],
      ['wharf_gc_runs_total', 'Completed gc runs (scheduled, signalled or by wharf gc)', 'gcRuns'],
      ['wharf_gc_freed_bytes_total', 'Bytes of blob and upload files removed by gc', 'gcBytes'],
    ] as const;
    countersFrom(registers, counted, (field) => sources()?.lifecycle?.()[field]);
    const scrubbed = [
      ['wharf_scrub_bytes_total', 'Bytes of blob files the background scrub read and hashed', 'bytes'],
      ['wharf_scrub_blobs_total', 'Blob files the background scrub read to the end', 'blobs'],
      ['wharf_scrub_corrupt_blobs_total', 'Blob files the background scrub found corrupt and quarantined', 'corrupt'],
    ] as const;
    countersFrom(registers, scrubbed, (field) => sources()?.scrub?.()[field]);
    new Gauge({
      name: 'wharf_store_limit_bytes',
      help: 'store.maxSize in bytes (0: no limit)',
      registers,
      collect() {
        this.set(sources()?.lifecycle?.().limitBytes ?? 0);
      },
    });
  }

  /** The server's parts, once they exist (the upstream clients are made before the store is open). */
  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Told of every finished request (registry/request-log.ts). */
  readonly observeRequest = this.requests.observe;

  readonly observeUpstream = (exchange: UpstreamExchange): void => {
    const { upstream, method, status } = exchange;
    const shown = status === undefined ? 'none' : String(status);
    this.counter(`u ${upstream} ${method} ${shown}`, () => this.upstreamRequests.labels(upstream, method, shown)).inc();
    this.histogram(`ud ${upstream}`, () => this.upstreamSeconds.labels(upstream)).observe(exchange.seconds);
    if (status === undefined || status >= 500 || status === 429) {
      this.counter(`ue ${upstream}`, () => this.upstreamErrors.labels(upstream)).inc();
    }
  };

  private counter(key: string, make: () => { inc(value?: number): void }): { inc(value?: number): void } {
    let child = this.counters.get(key);
    if (child === undefined) {
      child = make();
      this.counters.set(key, child);
    }
    return child;
  }

  private histogram(key: string, make: () => { observe(value: number): void }): { observe(value: number): void } {
    let child = this.histograms.get(key);
    if (child === undefined) {
      child = make();
      this.histograms.set(key, child);
    }
    return child;
  }
}

/**
 * Counters over totals that another part keeps (the store's lifecycle, the scrub): each scrape
 * adds what the total grew by since the last one. `read` gives undefined before that part exists.
 */
function countersFrom<F extends string>(
  registers: Registry[],
  defs: readonly (readonly [name: string, help: string, field: F])[],
  read: (field: F) => number | undefined,
): void {
  for (const [name, help, field] of defs) {
    let seen = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const now = read(field);
        if (now === undefined) return;
        this.inc(now - seen);
        seen = now;
      },
    });
  }
}
