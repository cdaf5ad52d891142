/**
 * @module bench/load-tools
 * The public load generators and clients, run as processes with a deadline, their output parsed:
 * wrk (GET), ab (HEAD: wrk 4.1 hangs on HEAD answers with Content-Length), curl, skopeo.
 */
import { exec } from './processes.js';

export interface LoadResult {
  requests: number;
  seconds: number;
  bytes: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers plus socket errors: any of these makes the run invalid. */
  errors: number;
}

const binaryUnits: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const timeUnits: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function match(text: string, pattern: RegExp, what: string): RegExpExecArray {
  const m = pattern.exec(text);
  if (m === null) throw new Error(`could not read ${what} from:\n${text}`);
  return m;
}

function group(m: RegExpExecArray, index: number): string {
  const value = m[index];
  if (value === undefined) throw new Error(`regex group ${index} missing in "${m[0]}"`);
  return value;
}

function wrkDuration(m: RegExpExecArray, at: number): number {
  return Number(group(m, at)) * (timeUnits[group(m, at + 1)] ?? Number.NaN);
}

export function parseWrk(text: string): LoadResult {
  const summary = match(text, /(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read/, 'wrk summary');
  const seconds = (Number(group(summary, 2)) * (timeUnits[group(summary, 3)] ?? Number.NaN)) / 1000;
  const bytes = Number(group(summary, 4)) * (binaryUnits[group(summary, 5)] ?? Number.NaN);
  const requests = Number(group(summary, 1));
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket === null ? 0 : [1, 2, 3, 4].reduce((sum, i) => sum + Number(group(socket, i)), 0);
  const p50 = /^\s+50%\s+([\d.]+)(\w+)$/m.exec(text);
  const p99 = /^\s+99%\s+([\d.]+)(\w+)$/m.exec(text);
  return {
    requests,
    seconds,
    bytes,
    reqPerSec: requests / seconds,
    p50Ms: p50 === null ? Number.NaN : wrkDuration(p50, 1),
    p99Ms: p99 === null ? Number.NaN : wrkDuration(p99, 1),
    errors: (non2xx === null ? 0 : Number(group(non2xx, 1))) + socketErrors,
  };
}

export async function wrk(options: {
  url: string;
  connections: number;
  threads: number;
  seconds: number;
  headers?: Record<string, string>;
}): Promise<LoadResult> {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    '--timeout',
    '60s',
    '--latency',
    ...Object.entries(options.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    options.url,
  ];
  const result = await exec('wrk', args, { timeoutMs: (options.seconds + 60) * 1000 });
  return parseWrk(result.stdout);
}

export function parseAb(text: string): LoadResult {
  const requests = Number(group(match(text, /Complete requests:\s+(\d+)/, 'ab complete requests'), 1));
  const seconds = Number(group(match(text, /Time taken for tests:\s+([\d.]+) seconds/, 'ab time taken'), 1));
  const failed = Number(group(match(text, /Failed requests:\s+(\d+)/, 'ab failed requests'), 1));
  const non2xx = /Non-2xx responses:\s+(\d+)/.exec(text);
  const p50 = /^\s+50%\s+(\d+)/m.exec(text);
  const p99 = /^\s+99%\s+(\d+)/m.exec(text);
  return {
    requests,
    seconds,
    bytes: 0,
    reqPerSec: requests / seconds,
    p50Ms: p50 === null ? Number.NaN : Number(group(p50, 1)),
    p99Ms: p99 === null ? Number.NaN : Number(group(p99, 1)),
    errors: failed + (non2xx === null ? 0 : Number(group(non2xx, 1))),
  };
}

/** HEAD load with keep-alive. `-n` after `-t` lifts the 50,000-request cap that `-t` implies. */
export async function abHead(options: {
  url: string;
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
}): Promise<LoadResult> {
  const args = [
    '-i',
    '-k',
    '-q',
    '-c',
    String(options.connections),
    '-t',
    String(options.seconds),
    '-n',
    '100000000',
    '-s',
    '30',
    ...Object.entries(options.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    options.url,
  ];
  const result = await exec('ab', args, { timeoutMs: (options.seconds + 60) * 1000 });
  return parseAb(result.stdout);
}

/** One GET with curl into /dev/null: status, bytes and seconds as curl measured them. */
export async function curlGet(
  url: string,
  timeoutMs = 600_000,
): Promise<{ status: number; bytes: number; seconds: number }> {
  const result = await exec(
    'curl',
    ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', url],
    {
      timeoutMs,
    },
  );
  const [status, bytes, seconds] = result.stdout.trim().split(' ').map(Number);
  if (status === undefined || bytes === undefined || seconds === undefined)
    throw new Error(`curl: odd output ${result.stdout}`);
  return { status, bytes, seconds };
}

/** `skopeo copy` of an image into a `dir:` layout; resolves with the wall time in seconds. */
export async function skopeoPull(source: string, destDir: string): Promise<number> {
  const result = await exec(
    'skopeo',
    ['copy', '--quiet', '--src-tls-verify=false', `docker://${source}`, `dir:${destDir}`],
    { timeoutMs: 600_000 },
  );
  return result.ms / 1000;
}
