/**
 * @module cli/gc-command
 * `wharf gc [--dry-run] [--json] [--grace D]`: mark and sweep (store/gc-plan.ts).
 *
 * Deleting is done by the one process that writes the store: gc takes the data
 * directory's lock. Beside a running `wharf serve` it refuses and says how to get
 * the same from serve (its schedule, store.gc.interval, or SIGUSR2 for a run
 * now): only serve knows what its requests are reading and writing. A dry run
 * deletes nothing and takes no lock: it reads the index read-only, beside serve
 * too (there its last-read times can be up to 30 s behind serve's memory).
 */
import { indexExists } from '../store/database.js';
import type { GcReport } from '../store/lifecycle.js';
import { LocalStore } from '../store/local-store.js';
import { loadConfig } from './config.js';
import { parseDuration } from './config-values.js';
import { DataDirInUseError, lockDataDir } from './data-dir-lock.js';
import { formatBytes } from './format-bytes.js';
import { lifecycleStoreOptions } from './server-lifecycle.js';
import { pino } from 'pino';

export interface GcFlags {
  config?: string;
  data?: string;
  dryRun?: boolean;
  json?: boolean;
  grace?: string;
}

export async function runGc(flags: GcFlags, env: Record<string, string | undefined>): Promise<void> {
  const config = loadConfig({ file: flags.config ?? env.WHARF_CONFIG, env, flags: { data: flags.data } });
  const graceMs =
    flags.grace === undefined ? config.lifecycle.gcGraceMs : parseDuration({ value: flags.grace, from: '--grace' });
  if (!indexExists(config.dataDir)) throw new Error(`no store in ${config.dataDir}`);
  const storeOptions = lifecycleStoreOptions({ pin: config.lifecycle.pin }, pino({ level: 'silent' }));
  let report: GcReport;
  if (flags.dryRun === true) {
    const store = LocalStore.openReadOnly(config.dataDir, storeOptions);
    try {
      report = await store.gc({ graceMs, dryRun: true });
    } finally {
      store.close();
    }
  } else {
    const lock = await lockDataDir(config.dataDir).catch((error: unknown) => {
      if (!(error instanceof DataDirInUseError)) throw error;
      throw new Error(
        `wharf serve (pid ${error.pid}) holds ${config.dataDir} and runs gc itself every store.gc.interval; ` +
          `\`kill -USR2 ${error.pid}\` makes it run one now (its log says what went), ` +
          '`wharf gc --dry-run` shows what would go',
      );
    });
    try {
      const store = await LocalStore.open(config.dataDir, storeOptions);
      try {
        report = await store.gc({ graceMs });
      } finally {
        store.close();
      }
    } finally {
      await lock.release();
    }
  }
  process.stdout.write(flags.json === true ? `${JSON.stringify(report)}\n` : formatGcReport(report));
}

export function formatGcReport(report: GcReport): string {
  const lines: string[] = [];
  for (const m of report.manifests) lines.push(`manifest  ${m.repository}@${m.digest}  untagged, unreferenced`);
  for (const l of report.links) lines.push(`link      ${l.repository} -> ${l.digest}  no manifest refers to it`);
  for (const b of report.blobs) lines.push(`blob      ${b.digest}  ${formatBytes(b.size)}`);
  for (const b of report.unindexed) lines.push(`unindexed ${b.digest}  ${formatBytes(b.size)}  (no index row)`);
  for (const u of report.uploads) lines.push(`upload    ${u.id}  ${formatBytes(u.size)}  abandoned`);
  const counts = [
    count(report.manifests.length, 'manifest'),
    count(report.links.length, 'link'),
    count(report.blobs.length, 'blob'),
    count(report.unindexed.length, 'unindexed file'),
    count(report.uploads.length, 'upload'),
  ].join(', ');
  lines.push(`${report.dryRun ? 'would free' : 'freed'} ${formatBytes(report.bytes)}: ${counts}`);
  return `${lines.join('\n')}\n`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
