/**
 * @module bench/processes
 * Every process and temp dir the benchmark makes is registered here, so it is killed and removed
 * at the end whatever happens: normal end, an exception, Ctrl-C, or SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
/** Long-running servers, spawned as process-group leaders. */
const groups = new WeakSet<ChildProcess>();

let shuttingDown = false;

/** True once killEverything ran: a server exiting then is expected. */
export function isShuttingDown(): boolean {
  return shuttingDown;
}

/** Synchronous, so it also works from process 'exit'. */
export function killEverything(): void {
  shuttingDown = true;
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    // Servers lead their own process group (nginx has workers): kill the group, else the process.
    try {
      process.kill(groups.has(child) ? -child.pid : child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

let installed = false;
export function installExitHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`bench: ${signal}, stopping every process it started`);
      killEverything();
      process.exit(130);
    });
  }
}

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `wharf-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Spawns and registers a long-running process; its output is kept (bounded) for error messages. */
export function spawnTracked(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; keepOutput?: boolean } = {},
): { child: ChildProcess; output: () => string; exited: Promise<Exited> } {
  // detached: its own process group, so killEverything reaches nginx's workers too.
  const child = spawn(cmd, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(child);
  groups.add(child);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    // Long runs of an access log are only needed whole when asked for (the upstream's).
    if (options.keepOutput !== true && output.length > 1_000_000) output = output.slice(-100_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<Exited>((resolve) => {
    child.once('error', () => resolve({ code: null, signal: null }));
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, output: () => output, exited };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(child: ChildProcess, exited: Promise<Exited>, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const gone = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!gone) {
    child.kill('SIGKILL');
    await withDeadline(exited, 5_000, `pid ${child.pid} exiting after SIGKILL`);
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a client to completion with a hard deadline; rejects on a non-zero exit unless `allowFail`. */
export function exec(
  cmd: string,
  args: readonly string[],
  options: { timeoutMs: number; allowFail?: boolean; env?: NodeJS.ProcessEnv },
): Promise<ExecResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Error(`${cmd}: failed to start: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const ms = performance.now() - started;
      const line = `${cmd} ${args.join(' ')}`;
      if (timedOut) reject(new Error(`${line}: timed out after ${options.timeoutMs} ms\n${stderr}`));
      else if (code !== 0 && options.allowFail !== true)
        reject(new Error(`${line}: exit ${code ?? signal}\n${stderr}${stdout}`));
      else resolve({ code: code ?? -1, stdout, stderr, ms });
    });
  });
}

/** Rejects naming `what` if `promise` has not settled within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline: ${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registers a directory made elsewhere for removal at the end. */
export function trackDir(dir: string): void {
  tempDirs.add(dir);
}
