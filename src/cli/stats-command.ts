/**
 * @module cli/stats-command
 * `wharf du` and `wharf stats` (`--json`): what the store holds (store/store-stats.ts)
 * in all, pinned against cached, by upstream and by repository, when it was stored
 * and last read; `stats` adds the hit ratio of the running server (server-hits.ts).
 * Opens the index read-only and takes no lock: both run beside `wharf serve`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { hostComponent } from '../proxy/router.js';
import { indexExists, indexPath, openReadOnlyDatabase } from '../store/database.js';
import { collectStoreStats, type StoreStats, type Usage } from '../store/store-stats.js';
import { loadConfig, type Config } from './config.js';
import { lockFileName } from './data-dir-lock.js';
import { formatBytes } from './format-bytes.js';
import { fetchServerHits, type ServerHits } from './server-hits.js';
import { pinnedRepositoryTest } from './server-lifecycle.js';

export interface StatsFlags {
  config?: string;
  data?: string;
  json?: boolean;
  /** The running server to ask for hit counters (default: from `listen`). */
  url?: string;
}

export async function runStats(
  flags: StatsFlags,
  env: Record<string, string | undefined>,
  withHits: boolean,
): Promise<void> {
  const config = loadConfig({ file: flags.config ?? env.WHARF_CONFIG, env, flags: { data: flags.data } });
  if (!indexExists(config.dataDir)) throw new Error(`no store in ${config.dataDir}`);
  const components = new Set(config.upstreams.map((u) => hostComponent(u.host)));
  // A mirrored name is `<host component>/<repository>`: a one-part name is local whatever it spells.
  const upstreamOf = (name: string): string | undefined => {
    const slash = name.indexOf('/');
    const first = slash === -1 ? undefined : name.slice(0, slash);
    return first !== undefined && components.has(first) ? first : undefined;
  };
  const db = openReadOnlyDatabase(indexPath(config.dataDir));
  let stats: StoreStats;
  try {
    db.pragma('busy_timeout = 5000');
    stats = collectStoreStats(db, upstreamOf, pinnedRepositoryTest(config.lifecycle.pin));
  } finally {
    db.close();
  }
  let hits: ServerHits | string | undefined;
  if (withHits) {
    hits = existsSync(join(config.dataDir, lockFileName))
      ? await fetchServerHits(flags.url ?? serverUrl(config))
      : `no wharf serve holds ${config.dataDir}: hit counters live in a serving process, from its start`;
  }
  if (flags.json === true) {
    const hitsJson = hits === undefined ? {} : { hits: typeof hits === 'string' ? { unavailable: hits } : hits };
    process.stdout.write(`${JSON.stringify({ dataDir: config.dataDir, ...stats, ...hitsJson })}\n`);
    return;
  }
  process.stdout.write(formatStats(config.dataDir, stats, hits));
}

/** Where this config's server listens, as a loopback client reaches it. */
function serverUrl(config: Config): string {
  const { host, port } = config.listen;
  const local = host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host;
  const shown = local.includes(':') && !local.startsWith('[') ? `[${local}]` : local;
  return `${config.tls === undefined ? 'http' : 'https'}://${shown}:${port}`;
}

function usage(u: Usage): string {
  return `${u.blobs} blob${u.blobs === 1 ? '' : 's'}, ${formatBytes(u.bytes)}`;
}

function when(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

export function formatStats(dataDir: string, stats: StoreStats, hits: ServerHits | string | undefined): string {
  const lines = [
    `store: ${dataDir}`,
    `total: ${usage(stats.total)}`,
    `pinned: ${usage(stats.pinned)} (pushed, imported, preloaded or store.pin: never evicted)`,
    `cached: ${usage(stats.cached)} (fetched from upstreams: evictable, fetched again when needed)`,
    `unreferenced: ${usage(stats.unreferenced)} (no image refers to them: gc removes them)`,
    `stored: oldest ${when(stats.stored?.oldest)}, newest ${when(stats.stored?.newest)}`,
    `accessed: oldest ${when(stats.accessed.oldest)}, newest ${when(stats.accessed.newest)}, ${stats.accessed.neverRead} never read`,
  ];
  if (typeof hits === 'string') lines.push(`hits: unknown: ${hits}`);
  else if (hits !== undefined) {
    const ratio = hits.ratio === undefined ? 'no reads yet' : `${(hits.ratio * 100).toFixed(1)}%`;
    lines.push(
      `hits: ${ratio} of ${hits.hits + hits.misses} reads of mirrored names answered from the store since the server started ` +
        `(${formatBytes(hits.servedBytes.store)} served from the store, ${formatBytes(hits.servedBytes.fill)} while filling)`,
    );
  }
  lines.push('');
  lines.push(
    ...table([
      ['UPSTREAM', 'REPOSITORIES', 'BLOBS', 'SIZE'],
      ...stats.upstreams.map((u) => [u.upstream, String(u.repositories), String(u.blobs), formatBytes(u.bytes)]),
    ]),
  );
  lines.push('');
  lines.push(
    ...table([
      ['REPOSITORY', 'UPSTREAM', 'BLOBS', 'SIZE', 'MANIFESTS', 'TAGS'],
      ...stats.repositories.map((r) => [
        r.name,
        r.upstream ?? 'local',
        String(r.blobs),
        formatBytes(r.bytes),
        String(r.manifests),
        Object.entries(r.tagSources)
          .map(([source, n]) => `${n} ${source}`)
          .join(', ') || '0',
      ]),
    ]),
  );
  return `${lines.join('\n')}\n`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}
