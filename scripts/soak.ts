/**
 * A soak run for manual use (`npm run soak`, 10 minutes by default): the real `wharf serve` under a
 * steady mix of everything at once, watched for slow leaks that a short test cannot see.
 *
 *   - SOAK_CONNECTIONS (default 200) keep-alive connections pulling manifests and blobs, local and
 *     mirrored, every answer checked (test/faults/load-driver.ts);
 *   - pushes of new blobs and manifests, monolithic and chunked, about 4 a second;
 *   - cold fills of new blobs from a scripted upstream, about 2 a second, one in four of them broken
 *     (truncated, reset mid-body or wrong bytes): the client must see a cut, nothing may be kept;
 *   - `wharf verify --quick` every minute while serving, a full `wharf verify` at the end.
 *
 * Exits 1 when any answer was wrong, memory grew (judgeMemory after a 60 s warm-up: last-third peak
 * RSS at most 1.2x the first-third peak + 32 MiB), descriptors did not come back, a part file was
 * left, or verify failed. SOAK_SECONDS shortens or lengthens it; SOAK_KEEP=1 keeps the data dir.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { judgeMemory, runLoad, type LoadTarget } from '../test/faults/load-driver.js';
import { MiB, openDescriptors } from '../test/faults/fault-support.js';
import { sha256 } from '../test/support/http.js';
import { allBlobsOf, makeImage, randomBytesFor } from '../test/support/make-image.js';
import { pushTestImage } from '../test/support/push-image.js';
import { resetMidBody, sendManifest, startScriptedRegistry } from '../test/support/scripted-registry.js';
import { runWharf, spawnWharf } from '../test/support/spawn-wharf.js';

const seconds = Number(process.env['SOAK_SECONDS'] ?? 600);
const connections = Number(process.env['SOAK_CONNECTIONS'] ?? 200);
const seed = process.env['SOAK_SEED'] ?? `soak-${Date.now()}`;
const upstreamHost = 'upstream.test';
const log = (line: string): void => void process.stdout.write(`[soak] ${line}\n`);

const failures: string[] = [];
const counts = { pushes: 0, fills: 0, brokenFills: 0, verifies: 0 };
const stopAt = Date.now() + seconds * 1000;
let stopping = false;
process.once('SIGINT', () => {
  log('SIGINT: stopping early');
  stopping = true;
});
const running = (): boolean => !stopping && Date.now() < stopAt;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Blobs the upstream serves, by digest; index % 4 === 3 is served broken. */
const fillBlobs = new Map<string, { bytes: Buffer; index: number }>();

const dataDir = await mkdtemp(join(tmpdir(), 'wharf-soak-'));
const mirrored = await makeImage({ seed: `${seed}/mirrored`, layers: 2, layerSize: 256 * 1024 });
const mirroredBlobs = allBlobsOf(mirrored);
const upstream = await startScriptedRegistry((req, res, ctx) => {
  if (ctx.request.path === '/v2/mirror/app/manifests/v1')
    return sendManifest(res, mirrored.root.bytes, mirrored.root.mediaType);
  const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(ctx.request.path)?.[1] ?? '';
  const fill = fillBlobs.get(digest);
  const bytes = fill?.bytes ?? mirroredBlobs.get(digest);
  if (bytes === undefined) return void res.writeHead(404).end();
  const fault =
    fill === undefined || fill.index % 4 !== 3 ? 'none' : (['truncate', 'reset', 'wrong'] as const)[fill.index % 3];
  if (fault === 'reset') return resetMidBody(res, bytes, bytes.length >> 1);
  res.writeHead(200, { 'Content-Length': String(bytes.length) });
  if (req.method === 'HEAD') return void res.end();
  if (fault === 'truncate') return void res.end(bytes.subarray(0, bytes.length >> 1));
  res.end(fault === 'wrong' ? Buffer.alloc(bytes.length, 7) : bytes);
});
const wharf = await spawnWharf(['--data', dataDir, '--upstream', `${upstreamHost}=${upstream.url}`]);
const pid = wharf.child.pid ?? 0;
log(`wharf pid ${pid} at ${wharf.url}, data in ${dataDir}; ${connections} connections for ${seconds} s; seed ${seed}`);

const local = await makeImage({ seed: `${seed}/local`, layers: 3, layerSize: 64 * 1024 });
await pushTestImage(wharf.url, 'soak/app', 'v1', local);
for (const digest of [mirrored.root.digest, ...mirrored.blobs.keys()]) {
  const kind = digest === mirrored.root.digest ? 'manifests' : 'blobs';
  const response = await request(
    `${wharf.url}/v2/${upstreamHost}/mirror/app/${kind}/${kind === 'manifests' ? 'v1' : digest}`,
  );
  await response.body.dump();
}
const fdsBefore = await openDescriptors(pid);

async function pushLoop(writer: number): Promise<void> {
  for (let i = 0; running(); i++) {
    const blob = randomBytesFor(`${seed}/push/${writer}/${i}`, 16 * 1024 + ((i * 7919) % (96 * 1024)));
    const digest = sha256(blob);
    const name = `soak/pushed-${writer}`;
    try {
      if (i % 2 === 0) {
        await expect201(`${wharf.url}/v2/${name}/blobs/uploads/?digest=${digest}`, 'POST', blob);
      } else {
        const post = await request(`${wharf.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
        await post.body.dump();
        const location = `${wharf.url}${String(post.headers.location)}`;
        const cut = blob.length >> 1;
        const patch = await request(location, {
          method: 'PATCH',
          body: blob.subarray(0, cut),
          headers: { 'Content-Range': `0-${cut - 1}` },
        });
        await patch.body.dump();
        await expect201(`${location}?digest=${digest}`, 'PUT', blob.subarray(cut), {
          'Content-Range': `${cut}-${blob.length - 1}`,
        });
      }
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: blob.length },
        layers: [],
      });
      await expect201(`${wharf.url}/v2/${name}/manifests/t${i % 50}`, 'PUT', Buffer.from(manifest), {
        'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
      });
      counts.pushes++;
    } catch (error) {
      failures.push(`push ${writer}/${i}: ${(error as Error).message}`);
    }
    await pause(500);
  }
}

async function expect201(
  url: string,
  method: 'POST' | 'PUT',
  body: Buffer,
  headers: Record<string, string> = {},
): Promise<void> {
  const response = await request(url, {
    method,
    body,
    headers: { 'Content-Type': 'application/octet-stream', ...headers },
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`${method} ${url}: ${response.statusCode} ${text}`);
}

async function fillLoop(): Promise<void> {
  for (let index = 0; running(); index++) {
    const bytes = randomBytesFor(`${seed}/fill/${index}`, 256 * 1024);
    const digest = sha256(bytes);
    fillBlobs.set(digest, { bytes, index });
    const broken = index % 4 === 3;
    let outcome: string;
    try {
      const response = await request(`${wharf.url}/v2/${upstreamHost}/fills/blobs/${digest}`, {
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      outcome =
        response.statusCode === 200 && sha256(body) === digest
          ? 'ok'
          : `status ${response.statusCode}, ${body.length} bytes`;
    } catch (error) {
      outcome = `cut (${(error as Error).message})`;
    }
    if (broken && outcome === 'ok') failures.push(`broken fill ${index} arrived whole and verified?`);
    else if (!broken && outcome !== 'ok') failures.push(`fill ${index}: ${outcome}`);
    if (broken) counts.brokenFills++;
    else counts.fills++;
    fillBlobs.delete(digest);
    await pause(500);
  }
}

async function verifyLoop(): Promise<void> {
  while (running()) {
    for (let waited = 0; waited < 60_000 && running(); waited += 1000) await pause(1000);
    if (!running()) return;
    const result = await runWharf(['verify', '--quick', '--data', dataDir], { timeoutMs: 120_000 });
    counts.verifies++;
    if (result.code !== 0)
      failures.push(`verify --quick while serving: exit ${result.code}\n${result.stdout}${result.stderr}`);
  }
}

const targets: LoadTarget[] = [
  {
    name: 'manifest',
    method: 'GET',
    path: '/v2/soak/app/manifests/v1',
    weight: 30,
    bytes: local.root.bytes,
    length: local.root.size,
  },
  {
    name: 'manifest HEAD',
    method: 'HEAD',
    path: `/v2/soak/app/manifests/${local.root.digest}`,
    weight: 10,
    length: local.root.size,
  },
  {
    name: 'mirrored manifest',
    method: 'GET',
    path: `/v2/mirror/app/manifests/v1?ns=${upstreamHost}`,
    weight: 10,
    bytes: mirrored.root.bytes,
    length: mirrored.root.size,
  },
  ...[...local.blobs].map(([digest, bytes]): LoadTarget => ({
    name: 'blob',
    method: 'GET',
    path: `/v2/soak/app/blobs/${digest}`,
    weight: 10,
    digest,
    length: bytes.length,
  })),
  ...[...mirrored.blobs].map(([digest, bytes]): LoadTarget => ({
    name: 'mirrored blob',
    method: 'GET',
    path: `/v2/${upstreamHost}/mirror/app/blobs/${digest}`,
    weight: 5,
    digest,
    length: bytes.length,
  })),
];

const [load] = await Promise.all([
  runLoad({
    base: wharf.url,
    pid,
    connections,
    seconds,
    targets,
    onSample: (s) => {
      if (Math.round(s.at) % 30 === 0) {
        log(
          `${s.at.toFixed(0)} s: ${s.requests} reads, ${counts.pushes} pushes, ${counts.fills}+${counts.brokenFills} fills, RSS ${(s.rss / MiB).toFixed(1)} MiB, ${s.fds} fds`,
        );
      }
    },
  }),
  pushLoop(0),
  pushLoop(1),
  fillLoop(),
  verifyLoop(),
]);

const memory = judgeMemory(load.samples, {
  warmupSeconds: Math.min(60, seconds / 4),
  ratio: 1.2,
  slackBytes: 32 * MiB,
});
if (!memory.flat) failures.push(`memory grew: ${memory.summary}`);
if (load.errors > 0) failures.push(`${load.errors} read errors, e.g.\n  ${load.errorSamples.join('\n  ')}`);
await pause(2000);
const fdsAfter = await openDescriptors(pid);
if (fdsAfter > fdsBefore + 5) failures.push(`descriptors: ${fdsBefore} before, ${fdsAfter} after the load`);
const parts = (await readdir(join(dataDir, 'tmp'))).filter((f) => f.endsWith('.part'));
if (parts.length > 0) failures.push(`part files left while idle: ${parts.join(', ')}`);
const verify = await runWharf(['verify', '--data', dataDir], { timeoutMs: 600_000 });
if (verify.code !== 0) failures.push(`final verify: exit ${verify.code}\n${verify.stdout}${verify.stderr}`);

await wharf.kill('SIGTERM');
await upstream.close();
if (process.env['SOAK_KEEP'] === '1') log(`data kept in ${dataDir}`);
else await rm(dataDir, { recursive: true, force: true });

log(
  `${load.requests} reads in ${load.seconds.toFixed(0)} s (${Math.round(load.requests / load.seconds)}/s), p50 ${load.latencyMs.p50} ms, p99 ${load.latencyMs.p99} ms, newcomer max ${load.newcomerMs.max} ms`,
);
log(
  `${counts.pushes} pushes, ${counts.fills} fills, ${counts.brokenFills} broken fills refused, ${counts.verifies} verifies while serving`,
);
log(`memory: ${memory.summary}; descriptors ${fdsBefore} -> ${fdsAfter}`);
log(
  `RSS per 10 s (MiB): ${load.samples
    .filter((_, i) => i % 10 === 0)
    .map((s) => (s.rss / MiB).toFixed(0))
    .join(' ')}`,
);
if (failures.length > 0) {
  for (const failure of failures.slice(0, 20)) process.stderr.write(`error: ${failure}\n`);
  process.exit(1);
}
log('ok');
