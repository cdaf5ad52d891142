/**
 * @module cli/verify-command
 * `wharf verify`: runs store/verify and prints one summary line per category
 * (stdout) and one `error: ...` line per problem (stderr). Exit 0 when the store
 * is consistent, 1 otherwise. Unindexed blob files and temp files are reported
 * on stdout but are not problems: a crash is allowed to leave them.
 *
 * `--repair` (ADR 0009) takes the data-dir lock (so never beside a running
 * serve, which checks blobs as it reads them instead) and quarantines what
 * store/repair.ts acts on. Each finding is then one line: `repaired: ...` on
 * stdout for a blob that comes back by itself (mirrored) or that nothing
 * refers to, `error: ...` on stderr for pushed or imported content, which is
 * lost until pushed again, and for what repair leaves alone. Exit 0 only when
 * nothing is left that needs the operator.
 */
import { formatBytes } from './format-bytes.js';
import { loadConfig } from './config.js';
import { DataDirInUseError, lockDataDir } from './data-dir-lock.js';
import { describeQuarantine, mirroredNameTest } from './quarantine-report.js';
import { LocalStore } from '../store/local-store.js';
import { repairStore } from '../store/repair.js';
import { verifyStore, type VerifyReport } from '../store/verify.js';

export interface VerifyFlags {
  config?: string;
  data?: string;
  quick?: boolean;
  repair?: boolean;
}

export interface VerifyOutput {
  stdout: string[];
  stderr: string[];
}

/** Runs the check and writes its report; resolves to the exit code. */
export async function runVerify(flags: VerifyFlags, env: Record<string, string | undefined>): Promise<number> {
  const startedAt = Date.now();
  const config = loadConfig({ file: flags.config ?? env.WHARF_CONFIG, env, flags: { data: flags.data } });
  if (flags.repair === true) {
    const isMirrored = mirroredNameTest(config.upstreams.map((u) => u.host));
    return runRepair(config.dataDir, flags.quick === true, startedAt, isMirrored);
  }
  const report = await verifyStore(config.dataDir, { quick: flags.quick === true, startedAt });
  const output = formatVerifyReport(report, config.dataDir, Date.now() - startedAt);
  for (const line of output.stdout) process.stdout.write(`${line}\n`);
  for (const line of output.stderr) process.stderr.write(`${line}\n`);
  return report.problems.length === 0 ? 0 : 1;
}

async function runRepair(
  dataDir: string,
  quick: boolean,
  startedAt: number,
  isMirrored: (name: string) => boolean,
): Promise<number> {
  let lock;
  try {
    lock = await lockDataDir(dataDir);
  } catch (error) {
    if (!(error instanceof DataDirInUseError)) throw error;
    process.stderr.write(
      `error: verify --repair changes the store and needs it to itself: ${error.message}. ` +
        '`wharf verify` without --repair may run beside it (and serve quarantines blobs that fail verification as it reads them)\n',
    );
    return 1;
  }
  try {
    const report = await verifyStore(dataDir, { quick, startedAt });
    const store = await LocalStore.open(dataDir);
    let outcome;
    try {
      outcome = await repairStore(store, report.problems);
    } finally {
      store.close();
    }
    const output = formatVerifyReport({ ...report, problems: outcome.remaining }, dataDir, Date.now() - startedAt);
    const lines = outcome.quarantined.map((result) => describeQuarantine(result, dataDir, isMirrored));
    const lost = lines.filter((line) => line.kind === 'lost');
    const repaired = lines.filter((line) => line.kind !== 'lost');
    // The summary's last line (result:) comes after the repair lines.
    const result = output.stdout.pop();
    for (const line of output.stdout) process.stdout.write(`${line}\n`);
    for (const line of repaired) process.stdout.write(`repaired: ${line.text}\n`);
    for (const line of output.stderr) process.stderr.write(`${line}\n`);
    for (const line of lost) process.stderr.write(`error: ${line.text}\n`);
    const left = outcome.remaining.length + lost.length;
    process.stdout.write(
      `${lines.length === 0 ? result : `result: ${plural(lines.length, 'blob')} quarantined (${repaired.length} repaired, ${lost.length} lost until pushed again), ${plural(outcome.remaining.length, 'other problem')}`}\n`,
    );
    return left === 0 ? 0 : 1;
  } finally {
    await lock.release();
  }
}

export function formatVerifyReport(report: VerifyReport, dataDir: string, elapsedMs: number): VerifyOutput {
  const count = (kinds: string[]): number => report.problems.filter((p) => kinds.includes(p.kind)).length;
  const status = (n: number, good: string): string => (n === 0 ? good : plural(n, 'problem'));
  const { blobs, index, uploads } = report;
  const blobProblems = count(['missing-file', 'size-mismatch', 'digest-mismatch', 'unreadable', 'bad-row']);
  const checked = report.quick ? 'sizes checked (quick: no hashing)' : `sizes and digests checked`;
  const stdout = [
    `store: ${dataDir}`,
    `index: ${status(count(['index-corrupt']), 'integrity ok')}`,
    `blobs: ${plural(blobs.rows, 'row')}, ${formatBytes(blobs.bytes)}, ${checked}: ${status(blobProblems, 'ok')}`,
    `files: ${status(count(['unexpected-file']), 'every file under blobs/ is named by its digest')}`,
    `unindexed: ${plural(report.unindexed.length, 'file')} under blobs/ without an index row` +
      (report.unindexed.length === 0 ? '' : ' (harmless: a crash between rename and index insert leaves them)'),
    ...report.unindexed.map((f) => `unindexed: ${f.digest} (${f.path}, ${f.size} bytes)`),
    `references: ${plural(index.manifests, 'manifest')}, ${plural(index.tags, 'tag')}, ${plural(index.links, 'link')}: ${status(count(['broken-reference']), 'ok')}`,
    `uploads: ${plural(uploads.sessions, 'session')}, ${plural(uploads.filesWithoutSession, 'file')} without a session: ` +
      status(count(['upload-file-missing', 'upload-file-short']), 'ok'),
    `temp: ${plural(report.temp.length, '.part file')} older than this run` +
      (report.temp.length === 0 ? '' : ' (a write in progress, or left by a crash: removed at the next start)'),
    ...report.temp.map((t) => `temp: ${t.path}, ${t.size} bytes, last written ${Math.round(t.idleMs / 1000)} s ago`),
    report.problems.length === 0
      ? `result: consistent (${formatBytes(blobs.hashedBytes)} hashed in ${(elapsedMs / 1000).toFixed(1)} s)`
      : `result: ${plural(report.problems.length, 'problem')}`,
  ];
  return { stdout, stderr: report.problems.map((p) => `error: ${p.message}`) };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
