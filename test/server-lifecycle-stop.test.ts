/**
 * @module test/server-lifecycle-stop.test
 * serve's shutdown stops the background lifecycle before it closes the index: stop() must wait
 * for a gc already running (a SIGUSR2 or scheduled one), or the index closes under it and the
 * sweep fails half-way (files removed, their rows not). Round 10b of the hand-planted bugs
 * (docs/mutation-testing.md): a stop() that returned without waiting passed every test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startLifecycle } from '../src/cli/server-lifecycle.js';
import { requireRepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { GraphStore } from './support/graph-store.js';

let root: string;
let store: LocalStore | undefined;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-lifecycle-stop-'));
  const graph = await GraphStore.open(root);
  await graph.image(requireRepoName('team/kept'), 'kept', 'pushed', { tag: 'v1' });
  graph.openIndex().close();
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

describe('the server lifecycle', () => {
  it('stop() waits for a gc in progress before it returns (the index closes right after)', async () => {
    store = await LocalStore.open(root, { recordReads: true });
    const lifecycle = startLifecycle(store, { gcIntervalMs: 0 }, pino({ level: 'silent' }));
    let finished = false;
    const gc = lifecycle.runGc({ graceMs: 0 }).then((report) => {
      finished = true;
      return report;
    });
    await lifecycle.stop();
    expect(finished).toBe(true);
    // What serve does next: the gc had nothing left to do against the index.
    store.close();
    store = undefined;
    const report = await gc;
    expect(report.dryRun).toBe(false);
    expect(report.manifests).toEqual([]);
  });

  // Round 12c: `interval >= 0` scheduled a gc every tick when store.gc.interval is 0 (off): with a grace
  // of 0 an untagged image vanished while nobody asked for a gc.
  it('schedules no gc when store.gc.interval is 0 or absent', async () => {
    const graph = await GraphStore.open(root);
    const loose = await graph.image(requireRepoName('team/loose'), 'loose', 'fetched', {});
    graph.openIndex().close();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    for (const options of [{ gcIntervalMs: 0, gcGraceMs: 0 }, { gcGraceMs: 0 }]) {
      store = await LocalStore.open(root, { recordReads: true });
      const lifecycle = startLifecycle(store, options, pino({ level: 'info' }, sink));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await lifecycle.stop();
      expect(
        lines.filter((line) => line.includes('gc')),
        JSON.stringify(options),
      ).toEqual([]);
      expect((await store.statManifest(requireRepoName('team/loose'), loose.manifest.digest))?.digest).toBe(
        loose.manifest.digest,
      );
      store.close();
      store = undefined;
    }
  });
});
