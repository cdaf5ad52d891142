/**
 * @module test/gc-signal.test
 * `kill -USR2 <pid>` runs one gc in a running `wharf serve` (what `wharf gc` beside serve tells
 * the operator to do): a spawned serve, an image pushed then deleted by digest, and after the
 * in-use window (store.gc.inUse, shortened here) and the grace period (store.gc.grace, 0) the
 * signal frees its bytes: the blob files are gone and the log says how many bytes went.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from './support/http.js';
import { makeImage, testSeed } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';

const inUseMs = 300;

async function filesBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return bytes;
}

/** The first JSON log line with this message, once it appears (with a deadline). */
async function logLine(wharf: SpawnedWharf, msg: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const line of wharf.output().split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.msg === msg) return parsed;
    }
    if (Date.now() > deadline) throw new Error(`deadline: no "${msg}" line; output: ${wharf.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('SIGUSR2 in wharf serve', () => {
  let dataDir: string;
  let wharf: SpawnedWharf | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wharf-gc-signal-'));
  });

  afterAll(async () => {
    await wharf?.kill();
    await rm(dataDir, { recursive: true, force: true });
  }, 30_000);

  it('runs one gc that frees the bytes of a deleted image', async () => {
    wharf = await spawnWharf(['--data', dataDir, '--log-level', 'info'], {
      env: {
        WHARF_GC_GRACE: '0s',
        WHARF_GC_IN_USE: `${inUseMs}ms`,
        WHARF_GC_INTERVAL: 'off',
        WHARF_LOG_FORMAT: 'json',
      },
    });
    const image = await makeImage({ seed: testSeed('gc signal'), layers: 2 });
    await pushTestImage(wharf.url, 'team/app', 'v1', image);
    const stored = await filesBytes(join(dataDir, 'blobs'));
    expect(stored).toBeGreaterThan(0);
    const deleted = await call(wharf.url, `/v2/team/app/manifests/${image.root.digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, inUseMs * 2));

    wharf.child.kill('SIGUSR2');
    const done = await logLine(wharf, 'gc: done');
    expect(done.bytes).toBe(stored);
    expect(await filesBytes(join(dataDir, 'blobs'))).toBe(0);
    // The process is still serving.
    expect((await call(wharf.url, '/healthz')).status).toBe(200);
  }, 60_000);
});
