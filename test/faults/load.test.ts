/**
 * 1,000 concurrent keep-alive connections against a spawned wharf for LOAD_SECONDS (default 60 s,
 * 20 s when CI is set), mixing manifest GETs and HEADs (by tag and digest) and blob GETs of a small
 * image, pushed locally and pulled through the mirror. The connections are all open before the
 * clock starts; every answer is checked (status, length, bytes or digest) and no error is allowed.
 * Memory must stay flat (judgeMemory says how that is judged), a new connection made during the
 * load must be answered within 10 s, and descriptors must come back to where they were once the
 * connections close.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allBlobsOf, makeImage, testSeed, type TestImage } from '../support/make-image.js';
import { pushTestImage } from '../support/push-image.js';
import { withDeadline } from '../support/run.js';
import { sendManifest, startScriptedRegistry, type ScriptedRegistry } from '../support/scripted-registry.js';
import { spawnWharf, type SpawnedWharf } from '../support/spawn-wharf.js';
import { expectPulls, expectVerifyClean, MiB, openDescriptors, waitUntil } from './fault-support.js';
import { judgeMemory, runLoad, type LoadTarget } from './load-driver.js';

const seconds = Number(process.env['LOAD_SECONDS'] ?? (process.env['CI'] === undefined ? 60 : 20));
const connections = Number(process.env['LOAD_CONNECTIONS'] ?? 1000);
const seed = testSeed('faults/load');
const upstreamHost = 'upstream.test';

let dataDir: string;
let upstream: ScriptedRegistry;
let wharf: SpawnedWharf | undefined;
let local: TestImage;
let mirrored: TestImage;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-faults-load-'));
  local = await makeImage({ seed: `${seed}/local`, layers: 3, layerSize: 64 * 1024 });
  mirrored = await makeImage({ seed: `${seed}/mirrored`, layers: 2, layerSize: 256 * 1024 });
  const blobs = allBlobsOf(mirrored);
  upstream = await startScriptedRegistry((req, res, ctx) => {
    if (ctx.request.path === '/v2/mirror/app/manifests/v1') {
      return sendManifest(res, mirrored.root.bytes, mirrored.root.mediaType);
    }
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(ctx.request.path)?.[1];
    const bytes = digest === undefined ? undefined : blobs.get(digest);
    if (bytes === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': String(bytes.length) });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  wharf = await spawnWharf(['--data', dataDir, '--upstream', `${upstreamHost}=${upstream.url}`]);
  await pushTestImage(wharf.url, 'load/app', 'v1', local);
  // Cached through the mirror once; under load every request is a hit.
  await expectPulls(wharf.url, `${upstreamHost}/mirror/app`, 'v1', {
    manifest: mirrored.root.bytes,
    blobs: mirrored.blobs,
  });
});

afterAll(async () => {
  if (wharf !== undefined) await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf exiting');
  await upstream?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

function targets(): LoadTarget[] {
  const image = local.images[0];
  const mirroredImage = mirrored.images[0];
  if (image === undefined || mirroredImage === undefined) throw new Error('no image');
  const manifest = local.root;
  const list: LoadTarget[] = [
    {
      name: 'manifest by tag',
      method: 'GET',
      path: '/v2/load/app/manifests/v1',
      weight: 20,
      bytes: manifest.bytes,
      length: manifest.size,
    },
    {
      name: 'manifest by digest',
      method: 'GET',
      path: `/v2/load/app/manifests/${manifest.digest}`,
      weight: 10,
      bytes: manifest.bytes,
      length: manifest.size,
    },
    { name: 'manifest HEAD', method: 'HEAD', path: '/v2/load/app/manifests/v1', weight: 10, length: manifest.size },
    {
      name: 'mirrored manifest (ns=)',
      method: 'GET',
      path: `/v2/mirror/app/manifests/v1?ns=${upstreamHost}`,
      weight: 10,
      bytes: mirrored.root.bytes,
      length: mirrored.root.size,
    },
  ];
  for (const blob of [image.config, ...image.layers]) {
    list.push({
      name: 'blob',
      method: 'GET',
      path: `/v2/load/app/blobs/${blob.digest}`,
      weight: 10,
      digest: blob.digest,
      length: blob.size,
    });
  }
  for (const blob of mirroredImage.layers) {
    list.push({
      name: 'mirrored blob (prefix)',
      method: 'GET',
      path: `/v2/${upstreamHost}/mirror/app/blobs/${blob.digest}`,
      weight: 5,
      digest: blob.digest,
      length: blob.size,
    });
  }
  return list;
}

describe(`${connections} concurrent connections for ${seconds} s`, () => {
  it(
    'answers every request correctly with flat memory and no leaked descriptors',
    { timeout: seconds * 1000 + 120_000 },
    async () => {
      if (wharf === undefined || wharf.child.pid === undefined) throw new Error('setup did not finish');
      const pid = wharf.child.pid;
      const upstreamBefore = upstream.requests.length;
      const fdsBefore = await openDescriptors(pid);
      const result = await runLoad({
        base: wharf.url,
        pid,
        connections,
        seconds,
        targets: targets(),
        onSample: (s) => {
          if (Math.round(s.at) % 10 === 0) {
            console.info(
              `[faults/load] ${s.at.toFixed(0)} s: ${s.requests} requests, ${s.connected} connections, RSS ${(s.rss / MiB).toFixed(1)} MiB, ${s.fds} fds`,
            );
          }
        },
      });
      const memory = judgeMemory(result.samples, {
        warmupSeconds: Math.min(20, seconds / 3),
        ratio: 1.2,
        slackBytes: 32 * MiB,
      });
      console.info(
        [
          `[faults/load] ${result.requests} requests in ${result.seconds.toFixed(1)} s (${Math.round(result.requests / result.seconds)}/s), ${result.errors} errors`,
          `${result.maxConnected} connections opened in ${result.openMs} ms before the clock started`,
          `latency p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms`,
          `a new connection waited up to ${result.newcomerMs.max} ms for /v2/ (${result.newcomerMs.count} probes)`,
          `by target: ${JSON.stringify(result.byTarget)}`,
          `memory: ${memory.summary}`,
          `RSS per second (MiB): ${result.samples.map((s) => (s.rss / MiB).toFixed(0)).join(' ')}`,
        ].join('\n  '),
      );
      if (result.errors > 0)
        console.info(`[faults/load] wharf's log, last lines:\n${wharf.output().split('\n').slice(-15).join('\n')}`);
      expect(result.errorSamples).toEqual([]);
      expect(result.errors).toBe(0);
      expect(result.maxConnected, 'connections open at once').toBe(connections);
      expect(memory.flat, memory.summary).toBe(true);
      // A busy server still lets newcomers in (measured here: about 1.5 s at worst).
      expect(result.newcomerMs.max, 'longest wait of a new connection for /v2/').toBeLessThan(10_000);
      // Served from the store: the load never reached the upstream.
      expect(upstream.requests.length).toBe(upstreamBefore);
      // Every connection closed by the client is released by the server, with its descriptors.
      await waitUntil(
        async () => ((await openDescriptors(pid)) <= fdsBefore + 5 ? true : undefined),
        15_000,
        `open descriptors back to ${fdsBefore} (+5) after the load`,
      );
      await expectVerifyClean(dataDir);
    },
  );
});
