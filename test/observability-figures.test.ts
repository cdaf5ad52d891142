/**
 * The figures an operator reads, checked in-process (round 11c): the per-request metrics at their
 * edges (a duration exactly on a bucket bound, the histogram's sum, what counts as cut short, which
 * bytes count as served from the store), the upstream error counter, the lifecycle counters across
 * scrapes, the Cache-Status header for every cache result, and `wharf stats`' hit figures (parsed
 * from /metrics, a server answering something else than 200, the human line).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { WharfMetrics } from '../src/cli/metrics.js';
import { RequestMetrics } from '../src/cli/request-metrics.js';
import { fetchServerHits, parseServerHits } from '../src/cli/server-hits.js';
import { formatStats } from '../src/cli/stats-command.js';
import type { CacheResult } from '../src/oci/read-trace.js';
import { cacheStatusHeader } from '../src/registry/cache-status.js';
import type { RequestRecord } from '../src/registry/request-log.js';
import type { StoreStats } from '../src/store/store-stats.js';
import { withDeadline } from './support/run.js';
import { metric } from './support/metrics-text.js';

function record(fields: Partial<RequestRecord>): RequestRecord {
  return {
    requestId: 'r',
    method: 'GET',
    route: 'blob',
    status: 200,
    bytes: 0,
    durationMs: 1,
    client: '127.0.0.1',
    completed: true,
    ...fields,
  };
}

async function exposition(observe: (requests: RequestMetrics) => void): Promise<string> {
  const requests = new RequestMetrics();
  const registry = new Registry();
  requests.register(registry);
  observe(requests);
  return registry.metrics();
}

describe('request metrics', () => {
  it('count a duration exactly on a bound in that bound (le is "less than or equal")', async () => {
    const text = await exposition((r) => r.observe(record({ durationMs: 1 })));
    const bucket = (le: string): number => metric(text, 'wharf_http_request_duration_seconds_bucket', { le });
    expect(bucket('0.0005')).toBe(0);
    expect(bucket('0.001')).toBe(1);
    expect(bucket('+Inf')).toBe(1);
  });

  it('sum the seconds, and count the requests, per route', async () => {
    const text = await exposition((r) => {
      r.observe(record({ durationMs: 1500 }));
      r.observe(record({ durationMs: 2500, status: 404 }));
      r.observe(record({ route: 'manifest', durationMs: 250 }));
    });
    expect(metric(text, 'wharf_http_request_duration_seconds_sum', { route: 'blob' })).toBe(4);
    expect(metric(text, 'wharf_http_request_duration_seconds_count', { route: 'blob' })).toBe(2);
    expect(metric(text, 'wharf_http_request_duration_seconds_sum', { route: 'manifest' })).toBe(0.25);
  });

  it('count only unfinished responses as cut short, not finished ones without a body', async () => {
    const text = await exposition((r) => {
      r.observe(record({ method: 'HEAD', bytes: 0 }));
      r.observe(record({ status: 304, bytes: 0 }));
      r.observe(record({ bytes: 10, completed: false }));
    });
    expect(metric(text, 'wharf_http_requests_cut_short_total', { route: 'blob' })).toBe(1);
    expect(metric(text, 'wharf_http_requests_total', { route: 'blob' })).toBe(3);
  });

  it('count bytes served from what was stored (hit, stale, revalidated, local) as store, only a fill as fill', async () => {
    const text = await exposition((r) => {
      const results: (CacheResult | undefined)[] = ['hit', 'stale', 'revalidated', undefined];
      for (const cache of results) r.observe(record({ cache, bytes: 100 }));
      r.observe(record({ route: 'manifest', cache: 'stale', bytes: 7 }));
      r.observe(record({ cache: 'fill', bytes: 1000 }));
      r.observe(record({ route: 'upload', method: 'PATCH', bytes: 5 }));
    });
    expect(metric(text, 'wharf_served_bytes_total', { source: 'store' })).toBe(407);
    expect(metric(text, 'wharf_served_bytes_total', { source: 'fill' })).toBe(1000);
    expect(metric(text, 'wharf_cache_results_total', { route: 'blob', result: 'stale' })).toBe(1);
    expect(metric(text, 'wharf_cache_results_total', { route: 'blob' })).toBe(4);
  });

  it('count a 2xx body (a 206 range too) as served bytes, never an error body', async () => {
    const text = await exposition((r) => {
      r.observe(record({ status: 206, bytes: 30 }));
      r.observe(record({ status: 404, bytes: 120 }));
      r.observe(record({ route: 'manifest', status: 401, bytes: 90 }));
      r.observe(record({ cache: 'fill', status: 502, bytes: 80 }));
    });
    expect(metric(text, 'wharf_served_bytes_total', { source: 'store' })).toBe(30);
    expect(metric(text, 'wharf_served_bytes_total', { source: 'fill' })).toBe(0);
  });
});

describe('wharf metrics', () => {
  it('count no answer, a 5xx and a 429 from an upstream as errors; a 4xx or a 200 not', async () => {
    const metrics = new WharfMetrics();
    const statuses = [undefined, 500, 502, 503, 429, 404, 401, 200, 499];
    for (const status of statuses)
      metrics.observeUpstream({ upstream: 'u.test', method: 'GET', status, seconds: 0.01 });
    const text = (await metrics.render()).body;
    expect(metric(text, 'wharf_upstream_errors_total', { upstream: 'u.test' })).toBe(5);
    expect(metric(text, 'wharf_upstream_requests_total', { upstream: 'u.test' })).toBe(statuses.length);
    expect(metric(text, 'wharf_upstream_requests_total', { status: 'none' })).toBe(1);
  });

  it('expose the lifecycle and scrub totals as they are, scrape after scrape', async () => {
    const metrics = new WharfMetrics();
    const lifecycle = { evictions: 2, evictedBytes: 300, gcRuns: 1, gcBytes: 40, limitBytes: 1000 };
    const scrub = { bytes: 500, blobs: 4, corrupt: 1 };
    metrics.attach({
      fills: () => ({
        inFlight: 0,
        queued: 0,
        stats: { started: 0, completed: 0, failed: 0 },
        prefetchStats: { started: 0, joined: 0, failed: 0 },
      }),
      storeUsage: () => ({ bytes: 0, blobs: 0 }),
      lifecycle: () => lifecycle,
      scrub: () => scrub,
    });
    await metrics.render();
    await metrics.render();
    lifecycle.evictions = 3;
    scrub.corrupt = 2;
    const text = (await metrics.render()).body;
    expect(metric(text, 'wharf_evictions_total')).toBe(3);
    expect(metric(text, 'wharf_evicted_bytes_total')).toBe(300);
    expect(metric(text, 'wharf_gc_runs_total')).toBe(1);
    expect(metric(text, 'wharf_scrub_corrupt_blobs_total')).toBe(2);
    expect(metric(text, 'wharf_scrub_bytes_total')).toBe(500);
    expect(metric(text, 'wharf_store_limit_bytes')).toBe(1000);
  });
});

describe('Cache-Status', () => {
  it('says how the mirror answered each read, and nothing for untraced or not-found reads', () => {
    const header = (cache: CacheResult | undefined): string | undefined =>
      cacheStatusHeader(cache === undefined ? undefined : { cache })['Cache-Status'];
    expect(header('hit')).toBe('wharf; hit');
    expect(header('fill')).toBe('wharf; fwd=miss; stored');
    expect(header('miss')).toBe('wharf; fwd=miss');
    expect(header('stale')).toBe('wharf; hit; detail=stale');
    expect(header('revalidated')).toBe('wharf; fwd=stale');
    expect(header('not_found')).toBeUndefined();
    expect(header(undefined)).toBeUndefined();
    expect(cacheStatusHeader({ upstream: 'u.test' })).toEqual({});
  });
});

describe("wharf stats' hit figures", () => {
  const url = 'http://127.0.0.1:1';

  it('count stale and revalidated reads as hits, fill and miss as misses, not_found as neither', () => {
    const text = [
      '# HELP wharf_cache_results_total x',
      'wharf_cache_results_total{route="blob",result="hit"} 3',
      'wharf_cache_results_total{route="manifest",result="stale"} 2',
      'wharf_cache_results_total{route="manifest",result="revalidated"} 1',
      'wharf_cache_results_total{route="blob",result="fill"} 4',
      'wharf_cache_results_total{route="manifest",result="miss"} 2',
      'wharf_cache_results_total{route="manifest",result="not_found"} 9',
      'wharf_served_bytes_total{source="store"} 70',
      'wharf_served_bytes_total{source="fill"} 30',
    ].join('\n');
    expect(parseServerHits(url, text)).toEqual({
      url,
      hits: 6,
      misses: 6,
      ratio: 0.5,
      servedBytes: { store: 70, fill: 30 },
    });
  });

  it('have no ratio before any read of a mirrored name', () => {
    expect(parseServerHits(url, 'wharf_cache_results_total{route="blob",result="not_found"} 2\n').ratio).toBe(
      undefined,
    );
  });

  describe('from a server', () => {
    let server: Server | undefined;
    afterEach(async () => {
      await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
      server = undefined;
    });

    it('that refuses /metrics are unknown, saying what it answered, not zero reads', async () => {
      const body = 'wharf_cache_results_total{route="blob",result="hit"} 3\n';
      server = createServer((_, res) => res.writeHead(401, { 'Content-Type': 'text/plain' }).end(body));
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const hits = await withDeadline(fetchServerHits(`${base}/`, 10_000), 20_000, 'fetchServerHits');
      expect(hits).toBe(`${base}/metrics answered 401`);
    });
  });

  it('print the ratio over every read, hits and misses', () => {
    const stats: StoreStats = {
      total: { blobs: 0, bytes: 0 },
      pinned: { blobs: 0, bytes: 0 },
      cached: { blobs: 0, bytes: 0 },
      unreferenced: { blobs: 0, bytes: 0 },
      upstreams: [],
      repositories: [],
      stored: undefined,
      accessed: { oldest: undefined, newest: undefined, neverRead: 0 },
    };
    const hits = { url, hits: 3, misses: 1, ratio: 0.75, servedBytes: { store: 0, fill: 0 } };
    expect(formatStats('/d', stats, hits)).toContain(
      'hits: 75.0% of 4 reads of mirrored names answered from the store since the server started',
    );
  });
});
