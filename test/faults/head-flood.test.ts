/**
 * Issue 8, finding 7, against a spawned wharf measured from /proc: 200 anonymous HEADs of
 * distinct uncached blobs used to start 200 upstream downloads (RSS 72 → 757 MB, 530 MB after).
 * Now each HEAD asks the upstream with a HEAD: no download starts and wharf's memory stays flat.
 * The upstream announces 512 MiB per blob and, should a GET come, sends 1 MiB and stalls (what
 * held the memory before).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/http.js';
import { withDeadline } from '../support/run.js';
import { startScriptedRegistry, type ScriptedRegistry } from '../support/scripted-registry.js';
import { spawnWharf, type SpawnedWharf } from '../support/spawn-wharf.js';
import { fetchBytes, MiB, residentBytes } from './fault-support.js';

const upstreamHost = 'flood.example.test';
const announced = 512 * MiB;
const heads = 200;

let dataDir: string;
let upstream: ScriptedRegistry;
let wharf: SpawnedWharf | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-faults-head-flood-'));
  upstream = await startScriptedRegistry((req, res) => {
    res.writeHead(200, { 'Content-Length': String(announced) });
    if (req.method === 'HEAD') return void res.end();
    res.write(Buffer.alloc(MiB));
  });
  wharf = await spawnWharf(['--data', dataDir, '--upstream', `${upstreamHost}=${upstream.url}`]);
});

afterAll(async () => {
  if (wharf !== undefined) await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf exiting');
  await upstream?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe(`${heads} HEADs of distinct uncached blobs`, () => {
  it('start no upstream download and leave memory flat', async () => {
    const pid = wharf?.child.pid ?? 0;
    const base = wharf?.url ?? '';
    // One request first, so the baseline includes a warmed-up server.
    await fetchBytes(`${base}/v2/${upstreamHost}/flood/blobs/${sha256('warm-up')}`, { method: 'HEAD' });
    const before = await residentBytes(pid);
    const digests = Array.from({ length: heads }, (_, i) => sha256(`head-flood-${i}`));
    const answers = await withDeadline(
      Promise.all(
        digests.map((digest) => fetchBytes(`${base}/v2/${upstreamHost}/flood/blobs/${digest}`, { method: 'HEAD' })),
      ),
      60_000,
      `${heads} HEADs`,
    );
    // Whatever a download would have cost shows up after a moment: give it one.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await residentBytes(pid);
    console.log(`${heads} blob HEADs: wharf RSS ${(before / MiB).toFixed(0)} → ${(after / MiB).toFixed(0)} MiB`);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers['content-length']).toBe(String(announced));
    }
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(0);
    expect(after - before).toBeLessThan(100 * MiB);
  });
});
