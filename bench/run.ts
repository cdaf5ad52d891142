/**
 * @module bench/run
 * `npm run bench`: wharf against CNCF distribution 2.8, both as pull-through caches of one
 * upstream distribution on loopback, with nginx as the static-file ceiling (issue #4). Writes
 * bench/results.md (one table: median [min–max] per scenario, ratios, targets) and prints it.
 * Env: BENCH_RUNS, BENCH_QUICK=1 (smoke run), BENCH_ONLY=6 (some scenarios; written to
 * bench/.work/results-partial.md), see bench/config.ts for the rest.
 */
import { createWriteStream } from 'node:fs';
import { chmod, cp, mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { format, resolveConfig } from 'prettier';
import { readConfig, type BenchConfig } from './config.js';
import { log, type BenchContext, type BenchImages } from './context.js';
import { cpuSnapshot, describeEnvironment, foreignCpuShare, preflight } from './environment.js';
import { makeBenchImage, makeRuntimeIndex, totalBytes } from './images.js';
import { installExitHandlers, killEverything, makeTempDir, removeTempDir, trackDir } from './processes.js';
import { pushImage, pushIndex } from './push.js';
import { renderTable, shortfalls, type Row } from './report.js';
import { runBlobThroughput } from './scenarios/blob-throughput.js';
import { runColdWarmPulls } from './scenarios/cold-warm-pull.js';
import { runConcurrentPulls } from './scenarios/concurrent-pulls.js';
import { runManifestLoad } from './scenarios/manifest-load.js';
import { runPeakRss } from './scenarios/peak-rss.js';
import { runShapedLink } from './scenarios/shaped-link.js';
import { runStartup } from './scenarios/startup.js';
import { startDistribution, startNginx } from './servers.js';

/** A copy of dist/ (and migrations/ and package.json beside it) inside the repo, so node_modules still resolves. */
async function snapshotDist(repoRoot: string): Promise<string> {
  const dir = join(repoRoot, 'bench', '.work', `wharf-${process.pid}`);
  trackDir(dir);
  await mkdir(dir, { recursive: true });
  await cp(join(repoRoot, 'dist'), join(dir, 'dist'), { recursive: true });
  await cp(join(repoRoot, 'migrations'), join(dir, 'migrations'), { recursive: true });
  // dist/cli/main.js reads its version from ../../package.json.
  await cp(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  return join(dir, 'dist');
}

function generateImages(config: BenchConfig): BenchImages {
  return {
    pull: makeBenchImage({
      name: 'bench/pull',
      tag: 'v1',
      seed: 'bench-pull',
      layers: config.layers,
      layerBytes: config.layerBytes,
    }),
    blob: makeBenchImage({
      name: 'bench/blob',
      tag: 'v1',
      seed: 'bench-blob',
      layers: 1,
      layerBytes: config.blobBytes,
    }),
    swarm: makeBenchImage({
      name: 'bench/swarm',
      tag: 'v1',
      seed: 'bench-swarm',
      layers: config.swarmLayers,
      layerBytes: config.swarmLayerBytes,
    }),
    big: makeBenchImage({
      name: 'bench/big',
      tag: 'v1',
      seed: 'bench-big',
      layers: 1,
      layerBytes: config.rssBlobBytes,
    }),
  };
}

/** nginx's root: the scenario-3 blob, byte for byte, plus an index page to probe readiness. */
async function nginxRoot(images: BenchImages): Promise<{ root: string; path: string }> {
  const root = await makeTempDir('nginx-root');
  await chmod(root, 0o755);
  const layer = images.blob.layers[0];
  if (layer === undefined) throw new Error('blob image has no layer');
  const file = join(root, 'blob');
  await pipeline(Readable.from(layer.chunks(), { objectMode: false }), createWriteStream(file, { mode: 0o644 }));
  await writeFile(join(root, 'index.html'), 'ok\n', { mode: 0o644 });
  return { root, path: '/blob' };
}

async function main(): Promise<number> {
  const config = readConfig();
  installExitHandlers();
  const problems = await preflight(config.repoRoot);
  if (problems.length > 0) {
    for (const p of problems) console.error(`bench: ${p}`);
    return 1;
  }
  const started = performance.now();
  const loadAtStart = loadavg();
  const cpuAtStart = await cpuSnapshot();
  const environment = await describeEnvironment(config.repoRoot);
  const distDir = await snapshotDist(config.repoRoot);

  log('generating images (streamed, hashed once to learn their digests)');
  const images = generateImages(config);
  const upstream = await startDistribution({ name: 'upstream' });
  const wanted = (n: number): boolean => config.only === undefined || config.only.has(n);
  // Only what the selected scenarios read (BENCH_ONLY=8 need not push the 1 GiB blob).
  const needed = [
    ...(wanted(1) ? [images.pull, images.blob] : []),
    ...(wanted(5) ? [images.swarm] : []),
    ...(wanted(6) ? [images.big] : []),
  ];
  for (const image of needed) {
    await pushImage(upstream.url, image);
    log(`pushed ${image.name}:${image.tag} (${(totalBytes(image) / 1e6).toFixed(0)} MB) to the upstream`);
  }
  const ctx: BenchContext = { config, distDir, upstream, images, notes: [] };
  const rows: Row[] = [];

  const selected = (n: number): boolean => config.only === undefined || config.only.has(n);
  const runtime = makeRuntimeIndex({ name: 'bench/runtime', tag: 'v1', seed: 'bench-runtime' });
  if (selected(8)) {
    await pushIndex(upstream.url, runtime);
    log(`pushed ${runtime.name}:${runtime.tag} (2 platforms) to the upstream`);
  }
  if (selected(1)) {
    log('scenarios 1-3 (cold): cold and warm pulls, cold blob GET');
    const pulls = await runColdWarmPulls(ctx);
    rows.push(...pulls.rows);
    const { root, path } = await nginxRoot(images);
    const nginx = await startNginx(root);
    log('scenario 3: cached blob throughput');
    rows.push(...(await runBlobThroughput(ctx, pulls.warm, nginx, path)));
    await nginx.close({ removeData: true });
    await removeTempDir(root);
    log('scenario 4: manifest load');
    rows.push(...(await runManifestLoad(ctx, pulls.warm)));
    for (const server of Object.values(pulls.warm)) await server.close({ removeData: true });
  }
  if (selected(5)) {
    log('scenario 5: concurrent cold pulls');
    rows.push(...(await runConcurrentPulls(ctx)));
  }
  if (selected(6)) {
    log('scenario 6: peak RSS');
    rows.push(...(await runPeakRss(ctx)));
  }
  if (selected(7)) {
    log('scenario 7: startup');
    rows.push(...(await runStartup(ctx)));
  }
  if (selected(8)) {
    log('scenario 8: cold pulls over a shaped link');
    rows.push(...(await runShapedLink(ctx, runtime)));
  }
  await upstream.close({ removeData: true });
  const foreign = foreignCpuShare(cpuAtStart, await cpuSnapshot());

  const minutes = (performance.now() - started) / 60_000;
  const table = renderTable(rows);
  const missed = shortfalls(rows);
  const summary =
    missed.length === 0
      ? ['**wharf meets every target in this run.**']
      : [`**wharf falls short of ${missed.length} target(s) in this run:**`, '', ...missed.map((m) => `- ${m}`)];
  const markdown = [
    '# wharf benchmark: results',
    '',
    `Written by \`${config.quick ? 'BENCH_QUICK=1 ' : ''}${config.only ? `BENCH_ONLY=${[...config.only].sort().join(',')} ` : ''}npm run bench\` (bench/run.ts) in ${minutes.toFixed(1)} min.` +
      (config.quick ? ' **Smoke run: one run each, short durations, a smaller RSS blob. Not a measurement.**' : ''),
    '',
    ...environment,
    `- Runs: ${config.runs} per scenario${config.rssRuns === config.runs ? '' : ` (${config.rssRuns} for scenario 6)`}; cells are median [min–max]; ratios compare medians.`,
    `- Load average (1/5/15 min) at start ${formatLoad(loadAtStart)}, at end ${formatLoad(loadavg())}: anything above ~2 means other work shared the two cores and the numbers are noisier.`,
    `- CPU used by processes outside the benchmark during the run: ${(foreign * 100).toFixed(0)}% of the machine${foreign > 0.1 ? ' — **the machine was shared; treat the figures as noisy**' : ''}.`,
    '',
    table,
    '',
    ...summary,
    '',
    '## How it was measured, and where it differs from the issue',
    '',
    ...methodNotes(config).map((n) => `- ${n}`),
    ...ctx.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  // Formatted as the repo's prettier config wants it, so `npm run format:check` stays green.
  const options = (await resolveConfig(config.out)) ?? {};
  await writeFile(config.out, await format(markdown, { ...options, filepath: config.out }));
  console.log(`\n${table}\n\n${summary.join('\n')}\n`);
  for (const note of ctx.notes) console.log(`- ${note}`);
  log(`wrote ${config.out} (${minutes.toFixed(1)} min)`);
  return 0;
}

function formatLoad(load: number[]): string {
  return load.map((l) => l.toFixed(2)).join('/');
}

function methodNotes(config: BenchConfig): string[] {
  return [
    'All on 127.0.0.1. The upstream is a CNCF distribution holding the generated images (uncompressed tar layers of seeded random, incompressible bytes). ' +
      'wharf (`node dist/cli/main.js serve --log-level warn --upstream registry.example.test=<upstream>`) is reached by the path prefix `registry.example.test/<repo>`; ' +
      'distribution runs with `proxy.remoteurl: <upstream>`, log level error and no access log, and is reached by plain repo names.',
    'Cold runs start each mirror on a fresh data dir (wharf) or storage root (distribution). Run order between servers rotates per run.',
    `Scenario 1/2: wall time of \`skopeo copy docker://… dir:…\`; skopeo's own hashing and disk writes cap it near 200 MB/s, so these ratios understate server differences. "direct" is the same pull from the upstream.`,
    `Scenario 3: cold = one curl GET of the blob on a fresh mirror (the curl's own speed figure); cached = wrk for ${config.blobSeconds} s per run, 1 connection/1 thread and 16 connections/2 threads, bytes read / duration. MB = 10^6 bytes.`,
    `Scenario 4: wrk --latency (GET) and ab -i -k (HEAD; wrk 4.1 hangs on HEAD answers with Content-Length), ${config.manifestConnections} connections, ${config.manifestSeconds} s, with an Accept header listing OCI and Docker manifest types (distribution refuses OCI manifests to clients that do not accept them). ab reports latency in whole milliseconds. wharf's tag TTL is its default 5 min, so its by-tag answers are cached; distribution asks the upstream on every by-tag request.`,
    "Scenario 5: each client fetches the manifest by tag, then config and layers three at a time, hashing every body (undici, in the benchmark process). Upstream requests are counted from the upstream's access log.",
    `Scenario 6: ${config.rssClients} concurrent curl GETs of the ${(config.rssBlobBytes / 1024 ** 3).toFixed(2)} GiB blob; peak RSS is VmHWM of the server process (a restart between the cold and warm phases resets it). Target check uses the highest run.`,
    `Scenario 8: the upstream behind bench/shaped-relay.ts (its own process; ${config.shaped.rttMs} ms round trip, paid once per connection for the handshake and once per request, and ${config.shaped.mbPerSecond} MB/s per connection and direction; BENCH_RTT_MS, BENCH_LINK_MBPS). The image is an OCI index of 2 platforms, each 10 uncompressed tar layers of ${'29.1, 15.8, 3.6, 42.7, 0.9, 9.4, 0.2, 2.3, 11.2 and 0.004'} MB (a language runtime's shape); amd64 is pulled. Each pull is cold for the client too (fresh skopeo dir, fresh containerd, fresh dockerd; only the pull is timed) and for the mirror (a fresh one per pull, its upstream the relay). ctr uses a hosts.toml mirror (?ns=registry.example.test); docker uses registry-mirrors (wharf mirrors the relay as docker.io, its default upstream), direct pulls use the relay as an insecure registry. Clients: BENCH_CLIENTS.`,
    'Scenario 7: time from spawn to the first 200 on GET /v2/ (polled every 2 ms). wharf is measured over an index of generated rows (repositories, manifests, config and layer blobs, links, references, a tag each; no files behind them) and over an empty store; distribution is measured on an empty store only (it does not read its storage at startup, and 10,000 repositories of files would take long to build).',
  ];
}

main().then(
  (code) => {
    killEverything();
    process.exit(code);
  },
  (error: unknown) => {
    console.error('bench failed:', error instanceof Error ? (error.stack ?? error.message) : error);
    killEverything();
    process.exit(1);
  },
);
