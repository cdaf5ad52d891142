/**
 * @module bench/copy-vs-skopeo
 * One-off comparison for issue 11: `wharf copy` against `skopeo copy --all` on the same
 * two-platform image (bench/images.ts makeRuntimeIndex: 2 × 10 layers, ~230 MB) between two local
 * CNCF distributions. Three steps per tool, each on a fresh target registry:
 *   1. cold: the target has nothing;
 *   2. again: the same image to another tag of the same repository (every blob is there);
 *   3. mount: from that repository to another one on the target (cross-repository mount).
 * Both registries are reached through counting TCP relays (in this process), so "bytes" are
 * every byte on the wire both ways (HTTP headers included): read from the source, sent to the
 * target. wharf runs from a fresh tsc build (node dist/cli/main.js, no tsx); skopeo gets a fresh
 * HOME per run, so its blob-info cache starts empty and then knows what the run copied (which is
 * what lets it mount in step 3, as on a user's machine).
 *
 *   node --import tsx bench/copy-vs-skopeo.ts [runs, default 3]
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdir } from 'node:fs/promises';
import { createServer, connect, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeRuntimeIndex } from './images.js';
import { exec, installExitHandlers, makeTempDir, removeTempDir, trackDir } from './processes.js';
import { pushIndex } from './push.js';
import { startDistribution, type Server } from './servers.js';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const runs = Number(process.argv[2] ?? 3);
const steps = ['cold', 'again', 'mount'] as const;
type Step = (typeof steps)[number];

interface Relay {
  host: string;
  /** Bytes from the client to the registry, and back. */
  up: number;
  down: number;
  close(): Promise<void>;
}

/** A plain TCP relay that counts the bytes each way. */
async function startRelay(target: string): Promise<Relay> {
  const [targetHost, targetPort] = target.split(':');
  const relay = { host: '', up: 0, down: 0, close: async () => undefined } as Relay;
  const server: NetServer = createServer((client) => {
    const upstream = connect(Number(targetPort), targetHost);
    client.on('data', (chunk: Buffer) => (relay.up += chunk.length));
    upstream.on('data', (chunk: Buffer) => (relay.down += chunk.length));
    client.pipe(upstream).on('error', () => client.destroy());
    upstream.pipe(client).on('error', () => upstream.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  relay.host = `127.0.0.1:${address.port}`;
  relay.close = () => new Promise((resolve) => server.close(() => resolve()));
  return relay;
}

/** dist/ built from the sources now, beside a package.json (main.js reads its version there). */
async function buildWharf(): Promise<string> {
  const dir = join(repoRoot, 'bench', '.work', `copy-${process.pid}`);
  trackDir(dir);
  await mkdir(dir, { recursive: true });
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')], { cwd: repoRoot });
  await cp(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  await cp(join(repoRoot, 'migrations'), join(dir, 'migrations'), { recursive: true });
  return join(dir, 'dist', 'cli', 'main.js');
}

type Tool = 'wharf' | 'skopeo';

function command(tool: Tool, main: string, from: string, to: string): [string, string[]] {
  if (tool === 'wharf') return [process.execPath, [main, 'copy', '--quiet', from, to]];
  const tls = ['--src-tls-verify=false', '--dest-tls-verify=false'];
  return ['skopeo', ['copy', '--all', '--quiet', ...tls, `docker://${from}`, `docker://${to}`]];
}

interface Sample {
  ms: number;
  read: number;
  sent: number;
}

async function runOnce(tool: Tool, main: string, source: Server): Promise<Record<Step, Sample>> {
  const target = await startDistribution({ name: 'target' });
  const home = await makeTempDir(`home-${tool}`);
  const from = await startRelay(source.host);
  const to = await startRelay(target.host);
  const result = {} as Record<Step, Sample>;
  try {
    const refs: Record<Step, [string, string]> = {
      cold: [`${from.host}/bench/runtime:v1`, `${to.host}/bench/runtime:v1`],
      again: [`${from.host}/bench/runtime:v1`, `${to.host}/bench/runtime:v2`],
      mount: [`${to.host}/bench/runtime:v1`, `${to.host}/other/runtime:v1`],
    };
    for (const step of steps) {
      const [a, b] = refs[step];
      const [cmd, args] = command(tool, main, a, b);
      const before = { fromDown: from.down, toUp: to.up, toDown: to.down };
      const done = await exec(cmd, args, { timeoutMs: 600_000, env: { ...process.env, HOME: home } });
      // In the mount step the target is the source as well: what it sends back counts as read.
      const read = from.down - before.fromDown + (step === 'mount' ? to.down - before.toDown : 0);
      result[step] = { ms: done.ms, read, sent: to.up - before.toUp };
    }
  } finally {
    await from.close();
    await to.close();
    await target.close({ removeData: true });
    await removeTempDir(home);
  }
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  installExitHandlers();
  const wharfMain = await buildWharf();
  const index = makeRuntimeIndex({ name: 'bench/runtime', tag: 'v1', seed: 'copy-vs-skopeo' });
  const imageBytes = index.platforms.reduce(
    (sum, { image }) =>
      sum + image.config.size + image.layers.reduce((s, l) => s + l.size, 0) + image.manifest.bytes.length,
    index.index.bytes.length,
  );
  const source = await startDistribution({ name: 'source' });
  try {
    await pushIndex(source.url, index);
    const samples: Record<Tool, Record<Step, Sample>[]> = { wharf: [], skopeo: [] };
    for (let run = 0; run < runs; run++) {
      // Alternate which tool goes first, so neither always meets a warmer page cache.
      const order: Tool[] = run % 2 === 0 ? ['wharf', 'skopeo'] : ['skopeo', 'wharf'];
      for (const tool of order) samples[tool].push(await runOnce(tool, wharfMain, source));
    }
    const versions = {
      node: process.version,
      skopeo: execFileSync('skopeo', ['--version']).toString().trim(),
      registry: execFileSync('docker-registry', ['--version']).toString().trim(),
    };
    console.log(`image: 2 platforms × 10 layers, ${(imageBytes / 1e6).toFixed(1)} MB; ${runs} runs, medians`);
    console.log(`${versions.node}; ${versions.skopeo}; ${versions.registry}`);
    console.log('| step | tool | time (s) | read from source (MB) | sent to target (MB) |');
    console.log('| --- | --- | ---: | ---: | ---: |');
    for (const step of steps) {
      for (const tool of ['wharf', 'skopeo'] as const) {
        const rows = samples[tool].map((r) => r[step]);
        const times = rows.map((r) => r.ms / 1000);
        console.log(
          `| ${step} | ${tool} | ${median(times).toFixed(2)} [${Math.min(...times).toFixed(2)}–${Math.max(...times).toFixed(2)}] | ` +
            `${(median(rows.map((r) => r.read)) / 1e6).toFixed(2)} | ${(median(rows.map((r) => r.sent)) / 1e6).toFixed(2)} |`,
        );
      }
    }
  } finally {
    await source.close({ removeData: true });
  }
}

await main();
