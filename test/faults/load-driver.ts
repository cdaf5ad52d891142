/**
 * @module test/faults/load-driver
 * Drives many keep-alive connections against a wharf process: one undici Client per connection,
 * all opened (with a GET /v2/) before the clock starts, then each looping over a weighted mix of
 * requests and checking every answer. Meanwhile /proc is sampled once a second for the server's
 * resident memory and open descriptors, and every 2 s a brand-new connection asks for /v2/: how
 * long a newcomer waits while the server is busy. Shared by the load test and scripts/soak.ts.
 */
import { createHash } from 'node:crypto';
import { Client } from 'undici';
import { openDescriptors, residentBytes } from './fault-support.js';

export interface LoadTarget {
  name: string;
  method: 'GET' | 'HEAD';
  path: string;
  weight: number;
  /** The exact body (manifests); checked on every GET. */
  bytes?: Buffer;
  /** The body's digest (blobs); checked on one GET in `hashEvery`. */
  digest?: string;
  /** Content-Length the answer must carry. */
  length: number;
}

export interface LoadOptions {
  base: string;
  /** The server's pid, for /proc readings. */
  pid: number;
  connections: number;
  seconds: number;
  targets: LoadTarget[];
  /** Connections are opened over this long rather than in one SYN burst (default 2 s), before the clock starts. */
  rampMs?: number;
  hashEvery?: number;
  /** Called with each sample, e.g. to print progress. */
  onSample?: (sample: Sample) => void;
}

export interface Sample {
  /** Seconds since the load started. */
  at: number;
  rss: number;
  fds: number;
  requests: number;
  connected: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** The first few distinct failures, for the report. */
  errorSamples: string[];
  byTarget: Record<string, number>;
  latencyMs: { p50: number; p99: number; max: number };
  /** The longest wait of a new connection for /v2/ during the load. */
  newcomerMs: { max: number; count: number };
  /** How long opening every connection took. */
  openMs: number;
  samples: Sample[];
  maxConnected: number;
  seconds: number;
}

/** xorshift32: a cheap, seeded choice of the next target for each request. */
function chooser(seed: number, targets: LoadTarget[]): () => LoadTarget {
  let state = seed >>> 0 || 1;
  const total = targets.reduce((sum, t) => sum + t.weight, 0);
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    let pick = ((state >>> 0) / 0x1_0000_0000) * total;
    for (const target of targets) {
      pick -= target.weight;
      if (pick < 0) return target;
    }
    return targets[targets.length - 1] as LoadTarget;
  };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const clientOptions = {
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    keepAliveTimeout: 60_000,
    // Docker's and containerd's dialers wait 30 s for a connection; undici's default is 10 s.
    connect: { timeout: 30_000 },
  };
  const clients = Array.from({ length: options.connections }, () => new Client(options.base, clientOptions));
  const hashEvery = options.hashEvery ?? 10;
  const latencies: number[] = [];
  const byTarget: Record<string, number> = {};
  const errorSamples = new Set<string>();
  const newcomerMs: number[] = [];
  let requests = 0;
  let errors = 0;
  let connected = 0;
  let maxConnected = 0;
  const samples: Sample[] = [];

  const fail = (target: { method: string; path: string }, why: string): void => {
    errors++;
    if (errorSamples.size < 10) errorSamples.add(`${target.method} ${target.path}: ${why}`);
  };

  // Every connection open before the clock starts, a few at a time rather than in one SYN burst.
  const opened = Date.now();
  await Promise.all(
    clients.map(async (client, index) => {
      await new Promise((resolve) => setTimeout(resolve, ((options.rampMs ?? 2000) * index) / options.connections));
      try {
        const response = await client.request({ method: 'GET', path: '/v2/' });
        await response.body.dump();
        if (response.statusCode === 200) connected++;
        else fail({ method: 'GET', path: '/v2/' }, `status ${response.statusCode} while connecting`);
      } catch (error) {
        fail({ method: 'GET', path: '/v2/' }, `while connecting: ${(error as Error).message}`);
      }
    }),
  );
  maxConnected = connected;
  const openMs = Date.now() - opened;
  const started = Date.now();
  const stopAt = started + options.seconds * 1000;

  async function worker(client: Client, index: number): Promise<void> {
    const next = chooser(index * 2_654_435_761 + 1, options.targets);
    while (Date.now() < stopAt) {
      const target = next();
      const t0 = performance.now();
      try {
        // reset: false keeps the connection after a HEAD, as Go clients (docker, containerd) do;
        // undici closes it by default, and a reconnect storm is not the load under test.
        const response = await client.request({ method: target.method, path: target.path, reset: false });
        const hash = target.method === 'GET' && target.digest !== undefined && requests % hashEvery === 0;
        const digester = hash ? createHash('sha256') : undefined;
        const chunks: Buffer[] = [];
        let received = 0;
        for await (const chunk of response.body) {
          received += (chunk as Buffer).length;
          digester?.update(chunk as Buffer);
          if (target.bytes !== undefined) chunks.push(chunk as Buffer);
        }
        if (response.statusCode !== 200) fail(target, `status ${response.statusCode}`);
        else if (Number(response.headers['content-length']) !== target.length) {
          fail(target, `Content-Length ${String(response.headers['content-length'])}, expected ${target.length}`);
        } else if (target.method === 'GET' && received !== target.length) fail(target, `body of ${received} bytes`);
        else if (target.method === 'GET' && target.bytes !== undefined && !Buffer.concat(chunks).equals(target.bytes)) {
          fail(target, 'wrong bytes');
        } else if (digester !== undefined && `sha256:${digester.digest('hex')}` !== target.digest) {
          fail(target, 'wrong digest');
        }
      } catch (error) {
        fail(target, (error as Error).message);
      }
      requests++;
      byTarget[target.name] = (byTarget[target.name] ?? 0) + 1;
      latencies.push(performance.now() - t0);
    }
  }

  const sampler = setInterval(() => {
    void Promise.all([residentBytes(options.pid), openDescriptors(options.pid)]).then(
      ([rss, fds]) => {
        const sample = { at: (Date.now() - started) / 1000, rss, fds, requests, connected };
        samples.push(sample);
        options.onSample?.(sample);
      },
      () => undefined,
    );
  }, 1000);
  // A newcomer every 2 s: a fresh connection asking for /v2/ while the others keep the server busy.
  const probe = setInterval(() => {
    const t0 = performance.now();
    const client = new Client(options.base, clientOptions);
    void client
      .request({ method: 'GET', path: '/v2/' })
      .then(async (response) => {
        await response.body.dump();
        newcomerMs.push(performance.now() - t0);
      })
      .catch((error: unknown) => fail({ method: 'GET', path: '/v2/ (newcomer)' }, (error as Error).message))
      .finally(() => void client.destroy());
  }, 2000);
  try {
    await Promise.all(clients.map((client, i) => worker(client, i)));
  } finally {
    clearInterval(sampler);
    clearInterval(probe);
    await Promise.all(clients.map((client) => client.close()));
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number): number =>
    Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return {
    requests,
    errors,
    errorSamples: [...errorSamples],
    byTarget,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: Math.round(latencies[latencies.length - 1] ?? 0) },
    newcomerMs: { max: Math.round(Math.max(0, ...newcomerMs)), count: newcomerMs.length },
    openMs,
    samples,
    maxConnected,
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Flat memory, as a verdict with its numbers. Samples in the first `warmupSeconds` are left out:
 * connections opening, JIT, the heap and the read buffers of ~1,000 requests in flight growing to
 * their working size (measured here: RSS climbs for ~40 s at 1,000 connections, then holds at
 * 450-540 MiB for minutes). The rest is cut in thirds; the peak of the last third may exceed the
 * peak of the first by at most `ratio` and `slackBytes`. Peaks rather than means: a collected heap
 * is a sawtooth, and its peaks are what a leak raises. The bound is coarse on purpose, so a short
 * run does not flake: over a 60 s load at ~1,000 req/s it catches a leak of a few KiB per request;
 * slower leaks are the 10-minute soak's job (scripts/soak.ts), whose thirds are minutes long.
 */
export function judgeMemory(
  samples: Sample[],
  options: { warmupSeconds: number; ratio: number; slackBytes: number },
): { flat: boolean; firstPeak: number; lastPeak: number; limit: number; summary: string } {
  const steady = samples.filter((s) => s.at >= options.warmupSeconds);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const peak = (part: Sample[]): number => Math.max(...part.map((s) => s.rss));
  const firstPeak = peak(steady.slice(0, third));
  const lastPeak = peak(steady.slice(-third));
  const limit = firstPeak * options.ratio + options.slackBytes;
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return {
    flat: steady.length >= 3 && lastPeak <= limit,
    firstPeak,
    lastPeak,
    limit,
    summary: `${steady.length} samples after ${options.warmupSeconds} s warm-up; peak RSS first third ${mib(firstPeak)}, last third ${mib(lastPeak)}, limit ${mib(limit)}`,
  };
}
