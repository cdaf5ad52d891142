/**
 * @module bench/config
 * The benchmark's knobs, read once from the environment: run counts, durations, sizes, output file.
 */
import { fileURLToPath } from 'node:url';

export interface BenchConfig {
  quick: boolean;
  /** Runs per scenario (the table shows the median with min and max). */
  runs: number;
  /** Runs of the 1 GiB peak-RSS scenario (as many as the others unless BENCH_RSS_RUNS says). */
  rssRuns: number;
  /** Seconds of each wrk run against a 200 MB blob (scenario 3). */
  blobSeconds: number;
  /** Seconds of each manifest load run (scenario 4; the issue asks for 10). */
  manifestSeconds: number;
  /** Connections for manifest load (scenario 4). */
  manifestConnections: number;
  /** Layers and layer size of the pull image (scenarios 1 and 2). */
  layers: number;
  layerBytes: number;
  /** The single blob of scenario 3. */
  blobBytes: number;
  /** Layers and layer size of the image pulled 20 times at once (scenario 5). */
  swarmLayers: number;
  swarmLayerBytes: number;
  swarmClients: number;
  /** The blob of scenario 6. */
  rssBlobBytes: number;
  rssClients: number;
  /** Images in the generated index (scenario 7). */
  startupImages: number;
  /** Scenario 8: the shaped link's round trip and per-connection bandwidth, and the clients that pull through it. */
  shaped: { rttMs: number; mbPerSecond: number; clients: readonly ('skopeo' | 'ctr' | 'docker')[] };
  /** Scenario numbers to run (BENCH_ONLY=6 or 5,6); 1-4 run together (3 and 4 use 1's warm mirrors). */
  only: ReadonlySet<number> | undefined;
  out: string;
  repoRoot: string;
}

function scenariosFromEnv(): ReadonlySet<number> | undefined {
  const raw = process.env['BENCH_ONLY'];
  if (raw === undefined || raw.trim() === '') return undefined;
  const picked = raw.split(',').map((part) => Number(part.trim()));
  if (picked.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) {
    throw new Error(`bench: BENCH_ONLY must list scenario numbers 1-8, got "${raw}"`);
  }
  return new Set(picked.some((n) => n <= 4) ? [...picked, 1, 2, 3, 4] : picked);
}

/** BENCH_CLIENTS=skopeo,ctr (default: skopeo, ctr and docker). */
function clientsFromEnv(): ('skopeo' | 'ctr' | 'docker')[] {
  const raw = process.env['BENCH_CLIENTS'] ?? 'skopeo,ctr,docker';
  const known = ['skopeo', 'ctr', 'docker'] as const;
  const picked = raw.split(',').map((part) => part.trim());
  const unknown = picked.filter((c) => !(known as readonly string[]).includes(c));
  if (unknown.length > 0) throw new Error(`bench: BENCH_CLIENTS lists unknown clients: ${unknown.join(', ')}`);
  return known.filter((c) => picked.includes(c));
}

const MB = 1_000_000;
const MiB = 1024 * 1024;

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`bench: ${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

export function readConfig(): BenchConfig {
  const repoRoot = fileURLToPath(new URL('../', import.meta.url));
  const quick = process.env['BENCH_QUICK'] === '1';
  const runs = intFromEnv('BENCH_RUNS', quick ? 1 : 5, 1);
  return {
    quick,
    runs,
    rssRuns: intFromEnv('BENCH_RSS_RUNS', runs, 1),
    blobSeconds: intFromEnv('BENCH_BLOB_SECONDS', quick ? 2 : 4, 1),
    manifestSeconds: intFromEnv('BENCH_MANIFEST_SECONDS', quick ? 2 : 10, 1),
    manifestConnections: intFromEnv('BENCH_MANIFEST_CONNECTIONS', 50, 1),
    layers: 4,
    layerBytes: intFromEnv('BENCH_LAYER_MB', 50, 1) * MB,
    blobBytes: intFromEnv('BENCH_BLOB_MB', 200, 1) * MB,
    swarmLayers: 4,
    swarmLayerBytes: intFromEnv('BENCH_SWARM_LAYER_MB', 16, 1) * MB,
    swarmClients: intFromEnv('BENCH_SWARM_CLIENTS', 20, 1),
    rssBlobBytes: intFromEnv('BENCH_RSS_BLOB_MIB', quick ? 256 : 1024, 1) * MiB,
    rssClients: intFromEnv('BENCH_RSS_CLIENTS', 20, 1),
    startupImages: intFromEnv('BENCH_STARTUP_IMAGES', 10_000, 1),
    shaped: {
      rttMs: intFromEnv('BENCH_RTT_MS', 20, 0),
      mbPerSecond: intFromEnv('BENCH_LINK_MBPS', 30, 1),
      clients: clientsFromEnv(),
    },
    only: scenariosFromEnv(),
    out:
      process.env['BENCH_OUT'] ??
      fileURLToPath(
        new URL(
          quick ? '.work/results-quick.md' : process.env['BENCH_ONLY'] ? '.work/results-partial.md' : 'results.md',
          import.meta.url,
        ),
      ),
    repoRoot,
  };
}
