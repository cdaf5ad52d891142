/**
 * @module cli/server-hits
 * The hit ratio for `wharf stats`, asked of the running server (ADR 0009): hit
 * counters live in the serving process (cli/request-metrics.ts) and are not
 * persisted, so they count since that server started. `stats` reads them from
 * its `/metrics` (open to loopback clients even when users are configured);
 * no server answering is a line saying so, not an error.
 */
import { request } from 'undici';

export interface ServerHits {
  url: string;
  /** Reads of mirrored names answered from the store (hit, stale, revalidated). */
  hits: number;
  /** Reads that went to an upstream (fill, miss). */
  misses: number;
  /** hits / (hits + misses); undefined before any read. */
  ratio: number | undefined;
  /** Blob and manifest bytes sent from the store and while filling from an upstream. */
  servedBytes: { store: number; fill: number };
}

const fromStore = new Set(['hit', 'stale', 'revalidated']);
const fromUpstream = new Set(['fill', 'miss']);
/** A sample line: name{labels} value. */
const sample = /^(\w+)\{([^}]*)\} (\S+)$/;

/** Reads the counters from `<url>/metrics`; a string saying why when no server answers usefully. */
export async function fetchServerHits(url: string, timeoutMs = 3000): Promise<ServerHits | string> {
  const target = `${url.replace(/\/+$/, '')}/metrics`;
  let text: string;
  try {
    const response = await request(target, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    text = await response.body.text();
    if (response.statusCode !== 200) return `${target} answered ${response.statusCode}`;
  } catch (error) {
    return `no wharf serve answered at ${target} (${(error as Error).message})`;
  }
  return parseServerHits(url, text);
}

export function parseServerHits(url: string, text: string): ServerHits {
  const hits: ServerHits = { url, hits: 0, misses: 0, ratio: undefined, servedBytes: { store: 0, fill: 0 } };
  for (const line of text.split('\n')) {
    const match = sample.exec(line);
    if (match === null) continue;
    const [, name, labelText = '', valueText = ''] = match;
    const labels = new Map([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
    const value = Number(valueText);
    if (!Number.isFinite(value)) continue;
    if (name === 'wharf_cache_results_total') {
      if (fromStore.has(labels.get('result') ?? '')) hits.hits += value;
      else if (fromUpstream.has(labels.get('result') ?? '')) hits.misses += value;
    } else if (name === 'wharf_served_bytes_total') {
      if (labels.get('source') === 'store') hits.servedBytes.store += value;
      else if (labels.get('source') === 'fill') hits.servedBytes.fill += value;
    }
  }
  const reads = hits.hits + hits.misses;
  hits.ratio = reads === 0 ? undefined : hits.hits / reads;
  return hits;
}
