/**
 * @module cli/request-metrics
 * The per-request metrics, tallied without prom-client on the request path: one
 * Map lookup and a few additions per request, into one row per (route class,
 * method, status, cache result). A scrape turns the rows into the exposition's
 * counters and the duration histogram. prom-client's own label handling (a hash
 * of the label object on every call) cost several microseconds per manifest GET.
 */
import type { Metric, Registry } from 'prom-client';
import type { RequestRecord } from '../registry/request-log.js';

/** Seconds: from a manifest served from memory (sub-ms) to a large cold layer (minutes). */
export const requestBuckets = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
] as const;

interface Row {
  route: string;
  method: string;
  status: string;
  cache: string | undefined;
  count: number;
  cutShort: number;
  bytes: number;
  seconds: number;
  /** Requests per bucket (not cumulative); the last one is +Inf. */
  buckets: number[];
}

interface Sample {
  labels: Record<string, string>;
  value: number;
  metricName?: string;
}

/** What prom-client's registry reads from a metric (registry.js getMetricsAsString). */
interface ExposedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>;
}

export class RequestMetrics {
  private readonly rows = new Map<string, Row>();

  readonly observe = (record: Readonly<RequestRecord>): void => {
    const key = `${record.route} ${record.method} ${record.status} ${record.cache ?? ''}`;
    let row = this.rows.get(key);
    if (row === undefined) {
      row = {
        route: record.route,
        method: record.method,
        status: String(record.status),
        cache: record.cache,
        count: 0,
        cutShort: 0,
        bytes: 0,
        seconds: 0,
        buckets: new Array<number>(requestBuckets.length + 1).fill(0),
      };
      this.rows.set(key, row);
    }
    const seconds = record.durationMs / 1000;
    row.count++;
    row.seconds += seconds;
    if (!record.completed) row.cutShort++;
    row.bytes += record.bytes;
    let bucket = 0;
    while (bucket < requestBuckets.length && seconds > (requestBuckets[bucket] as number)) bucket++;
    row.buckets[bucket] = (row.buckets[bucket] ?? 0) + 1;
  };

  register(registry: Registry): void {
    const expose = (metric: ExposedMetric): void =>
      // A plain object with the shape the registry reads: prom-client's types list only its own classes.
      registry.registerMetric(metric as unknown as Metric);
    const counter = (name: string, help: string, samples: () => Sample[]): void =>
      expose({
        name,
        help,
        type: 'counter',
        aggregator: 'sum',
        get: async () => ({ name, help, type: 'counter', aggregator: 'sum', values: samples() }),
      });
    counter('wharf_http_requests_total', 'HTTP requests answered, by route class, method and status', () =>
      this.sum(
        (row) => ({ route: row.route, method: row.method, status: row.status }),
        (row) => row.count,
      ),
    );
    counter(
      'wharf_http_requests_cut_short_total',
      'Responses that did not finish (the client left, or the connection was cut after a failure)',
      () =>
        this.sum(
          (row) => ({ route: row.route }),
          (row) => row.cutShort,
        ),
    );
    counter(
      'wharf_cache_results_total',
      'Reads of mirrored names by how the cache answered (hit, fill, miss, not_found, stale, revalidated)',
      () =>
        this.sum(
          (row) => (row.cache === undefined ? undefined : { route: row.route, result: row.cache }),
          (row) => row.count,
        ),
    );
    counter(
      'wharf_served_bytes_total',
      'Blob and manifest bytes sent to clients: source="store" from what was stored, "fill" while it came from an upstream',
      () =>
        this.sum(
          // Content only: a refusal's OCI error body (404, 401, 502) is not bytes served.
          (row) =>
            (row.route === 'blob' || row.route === 'manifest') && row.status.startsWith('2')
              ? { source: row.cache === 'fill' ? 'fill' : 'store' }
              : undefined,
          (row) => row.bytes,
        ),
    );
    const name = 'wharf_http_request_duration_seconds';
    const help = 'Time from a request to the end of its response, by route class';
    expose({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: this.histogram(name) }),
    });
  }

  /** One sample per distinct label set (undefined: the row does not count here), values added up. */
  private sum(labelsOf: (row: Row) => Record<string, string> | undefined, valueOf: (row: Row) => number): Sample[] {
    const samples = new Map<string, Sample>();
    for (const row of this.rows.values()) {
      const labels = labelsOf(row);
      if (labels === undefined) continue;
      const key = JSON.stringify(labels);
      const sample = samples.get(key) ?? { labels, value: 0 };
      sample.value += valueOf(row);
      samples.set(key, sample);
    }
    return [...samples.values()];
  }

  private histogram(name: string): Sample[] {
    const byRoute = new Map<string, { buckets: number[]; count: number; seconds: number }>();
    for (const row of this.rows.values()) {
      const entry = byRoute.get(row.route) ?? {
        buckets: new Array<number>(requestBuckets.length + 1).fill(0),
        count: 0,
        seconds: 0,
      };
      row.buckets.forEach((n, i) => (entry.buckets[i] = (entry.buckets[i] ?? 0) + n));
      entry.count += row.count;
      entry.seconds += row.seconds;
      byRoute.set(row.route, entry);
    }
    const samples: Sample[] = [];
    for (const [route, entry] of byRoute) {
      let cumulative = 0;
      requestBuckets.forEach((bound, i) => {
        cumulative += entry.buckets[i] ?? 0;
        samples.push({ labels: { le: String(bound), route }, value: cumulative, metricName: `${name}_bucket` });
      });
      samples.push({ labels: { le: '+Inf', route }, value: entry.count, metricName: `${name}_bucket` });
      samples.push({ labels: { route }, value: entry.seconds, metricName: `${name}_sum` });
      samples.push({ labels: { route }, value: entry.count, metricName: `${name}_count` });
    }
    return samples;
  }
}
