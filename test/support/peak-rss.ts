/**
 * @module test/support/peak-rss
 * Runs the real `wharf` command line and samples its peak resident set size
 * (VmHWM in /proc/<pid>/status, the kernel's own high-water mark), to show
 * that streaming commands keep memory flat whatever the blob size.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface MeasuredRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak RSS in bytes. */
  peakRss: number;
  elapsedMs: number;
}

async function highWaterMark(pid: number): Promise<number | undefined> {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

export function runWharfMeasured(args: string[], timeoutMs: number): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakRss = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const sampler = setInterval(() => {
      void highWaterMark(child.pid ?? 0).then((hwm) => {
        if (hwm !== undefined) peakRss = Math.max(peakRss, hwm);
      });
    }, 50);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wharf ${args.join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(sampler);
      clearTimeout(timer);
      resolve({ code, stdout, stderr, peakRss, elapsedMs: Date.now() - startedAt });
    });
  });
}
