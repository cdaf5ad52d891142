/**
 * @module bench/environment
 * Preflight (dist/ built, tools installed) and the facts results.md opens with: date, machine,
 * tool versions, and which wharf was measured.
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';
import { exec } from './processes.js';

const tools = ['docker-registry', 'skopeo', 'wrk', 'ab', 'curl'] as const;
export const nginxBinary = '/usr/sbin/nginx';

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(name: string): Promise<boolean> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && (await isExecutable(join(dir, name)))) return true;
  }
  return false;
}

/** Problems that stop the run before anything starts, one line each. */
export async function preflight(repoRoot: string): Promise<string[]> {
  const problems: string[] = [];
  if (!(await exists(join(repoRoot, 'dist', 'cli', 'main.js')))) {
    problems.push('dist/cli/main.js is missing: run `npm run build` first (the benchmark measures the built wharf).');
  }
  for (const tool of tools) {
    if (!(await onPath(tool))) problems.push(`${tool} is not on PATH: bash scripts/install-test-deps.sh installs it.`);
  }
  if (!(await isExecutable(nginxBinary))) problems.push(`${nginxBinary} is missing: apt-get install nginx-light.`);
  return problems;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await exec(cmd, args, { timeoutMs: 10_000, allowFail: true });
    return (r.stdout.trim() || r.stderr.trim()).split('\n')[0]?.trim() ?? '?';
  } catch {
    return '?';
  }
}

export async function describeEnvironment(repoRoot: string): Promise<string[]> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown CPU';
  const commit = await firstLine('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = await exec('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'src', 'migrations'], {
    timeoutMs: 10_000,
    allowFail: true,
  });
  const changed = dirty.stdout.trim() === '' ? 0 : dirty.stdout.trim().split('\n').length;
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${availableParallelism()} cores (${model}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux; every server, the load generator and the upstream share these cores over loopback`,
    `- Node ${process.version}; wharf ${commit}${changed > 0 ? ` with ${changed} uncommitted change(s) under src/ or migrations/ (dist/ as built at the start of the run)` : ''}, run from a snapshot of dist/`,
    `- ${await firstLine('docker-registry', ['--version'])}; ${await firstLine('skopeo', ['--version'])}; ` +
      `${(await firstLine('wrk', ['-v'])).split(' [')[0]}; ${(await firstLine('ab', ['-V'])).replace(/^This is ApacheBench, Version ([\d.]+).*$/, 'ApacheBench $1')}; ${await firstLine(nginxBinary, ['-v'])}; ` +
      `${(await firstLine('curl', ['--version'])).split(' ').slice(0, 2).join(' ')}`,
  ];
}

export interface CpuSnapshot {
  /** Busy clock ticks of the whole machine (every core). */
  busy: number;
  /** Ticks of this process and its reaped children (every server, client and load generator). */
  own: number;
  at: number;
}

export async function cpuSnapshot(): Promise<CpuSnapshot> {
  const stat = await readFile('/proc/stat', 'utf8');
  const fields = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
  const busy = fields.slice(0, 8).reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0);
  const self = await readFile('/proc/self/stat', 'utf8');
  const after = self
    .slice(self.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // Fields 14-17 of /proc/<pid>/stat (utime stime cutime cstime) are 11-14 after the state field.
  const own = after.slice(11, 15).reduce((sum, v) => sum + v, 0);
  return { busy, own, at: performance.now() };
}

/**
 * The share of the machine's CPU that processes outside the benchmark used between two snapshots
 * (another test suite, a build): the larger, the less the figures can be trusted.
 */
export function foreignCpuShare(start: CpuSnapshot, end: CpuSnapshot): number {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const capacity = ((end.at - start.at) / 1000) * ticksPerSecond * availableParallelism();
  return Math.max(0, end.busy - start.busy - (end.own - start.own)) / capacity;
}
