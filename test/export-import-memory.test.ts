/**
 * Issue 10: export and import stream. A 128 MiB layer goes through a spawned
 * `wharf export` and `wharf import` with a peak RSS (the kernel's VmHWM) below
 * what holding the layer once would need on top of an idle wharf process.
 * (A one-off with a 300 MiB layer measured 141 MiB export, 139 MiB import,
 * against 96 MiB for `wharf export --help`: see the README.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeImage, testSeed } from './support/make-image.js';
import { runWharfMeasured } from './support/peak-rss.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf } from './support/wharf.js';

const layerSize = 128 * 1024 * 1024;
const timeoutMs = 300_000;

describe('export and import keep memory flat', () => {
  let work: string | undefined;
  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it(
    'moves a 128 MiB layer without holding it',
    async () => {
      work = await mkdtemp(join(tmpdir(), 'wharf-memory-'));
      const source = await startWharf({ dataDir: join(work, 'source') });
      try {
        const image = await makeImage({ seed: testSeed('export-import memory'), layers: 1, layerSize });
        await pushTestImage(source.url, 'team/big', 'v1', image);
      } finally {
        await source.close();
      }
      const idle = await runWharfMeasured(['export', '--help'], 60_000);
      const bundle = join(work, 'big.tar');
      const exported = await runWharfMeasured(
        ['export', 'team/big:v1', '-o', bundle, '--data', join(work, 'source'), '--quiet'],
        timeoutMs,
      );
      expect(exported.stderr).toBe('');
      expect(exported.code).toBe(0);
      const imported = await runWharfMeasured(['import', bundle, '--data', join(work, 'target'), '--quiet'], timeoutMs);
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
      console.info(
        `peak RSS: idle ${mib(idle.peakRss)}, export ${mib(exported.peakRss)}, import ${mib(imported.peakRss)}`,
      );
      expect(idle.peakRss).toBeGreaterThan(0);
      expect(exported.peakRss, 'export peak RSS').toBeLessThan(idle.peakRss + layerSize);
      expect(imported.peakRss, 'import peak RSS').toBeLessThan(idle.peakRss + layerSize);
    },
    timeoutMs,
  );
});
