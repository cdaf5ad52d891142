/**
 * The `store:` keys (decision 0008): sizes with units, the low-water mark as a percentage or a
 * size, pin patterns from the file or the environment, the gc schedule; each refusal names its key.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/cli/config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-lifecycle-config-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function fromFile(yaml: string): Promise<ReturnType<typeof loadConfig>> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, yaml);
  return loadConfig({ file, env: {}, flags: {} });
}

describe('store: configuration', () => {
  it('defaults: no limit, gc every hour with an hour of grace, nothing pinned', () => {
    expect(loadConfig({ env: {}, flags: {} }).lifecycle).toEqual({
      maxSizeBytes: undefined,
      lowWaterBytes: undefined,
      pin: [],
      gcIntervalMs: 3_600_000,
      gcGraceMs: 3_600_000,
      inUseMs: 60_000,
      scrubRateBytes: 8 * 2 ** 20,
      scrubIntervalMs: 7 * 86_400_000,
    });
  });

  it('store.scrub: a rate with units or off, an interval; a bad rate names its key', async () => {
    const config = await fromFile('store:\n  scrub:\n    rate: 64MiB\n    interval: 1d\n');
    expect(config.lifecycle).toMatchObject({ scrubRateBytes: 64 * 2 ** 20, scrubIntervalMs: 86_400_000 });
    expect(loadConfig({ env: { WHARF_SCRUB_RATE: 'off' }, flags: {} }).lifecycle.scrubRateBytes).toBe(0);
    expect(() => loadConfig({ env: { WHARF_SCRUB_RATE: 'fast' }, flags: {} })).toThrow(
      /WHARF_SCRUB_RATE: expected a size like 50GiB/,
    );
  });

  it('reads sizes with units, the low-water mark as a percentage or a size, pins and the schedule', async () => {
    const config = await fromFile(
      "store:\n  maxSize: 50GiB\n  lowWaterMark: 80%\n  pin: ['docker.io/library/*', 'team/**']\n  gc:\n    interval: off\n    grace: 10m\n    inUse: 5s\n",
    );
    expect(config.lifecycle).toEqual({
      maxSizeBytes: 50 * 2 ** 30,
      lowWaterBytes: Math.floor(0.8 * 50 * 2 ** 30),
      pin: ['docker.io/library/*', 'team/**'],
      gcIntervalMs: 0,
      gcGraceMs: 600_000,
      inUseMs: 5_000,
      scrubRateBytes: 8 * 2 ** 20,
      scrubIntervalMs: 7 * 86_400_000,
    });
    const env = loadConfig({
      env: { WHARF_STORE_MAX_SIZE: '500MB', WHARF_STORE_LOW_WATER_MARK: '400MB', WHARF_STORE_PIN: 'a/*,b' },
      flags: {},
    }).lifecycle;
    expect(env).toMatchObject({ maxSizeBytes: 500e6, lowWaterBytes: 400e6, pin: ['a/*', 'b'] });
  });

  it('refuses bad values naming the key', async () => {
    expect(() => loadConfig({ env: { WHARF_STORE_MAX_SIZE: '50 parsecs' }, flags: {} })).toThrow(
      /WHARF_STORE_MAX_SIZE: expected a size like 50GiB/,
    );
    expect(() =>
      loadConfig({ env: { WHARF_STORE_MAX_SIZE: '1GiB', WHARF_STORE_LOW_WATER_MARK: '2GiB' }, flags: {} }),
    ).toThrow(/WHARF_STORE_LOW_WATER_MARK: must be below store.maxSize/);
    await expect(fromFile('store:\n  pin: docker.io/*\n')).rejects.toThrow(/store.pin: expected a list/);
    await expect(fromFile("store:\n  pin: ['UPPER']\n")).rejects.toThrow(/store.pin: invalid repository pattern/);
    await expect(fromFile('store:\n  gc:\n    grace: soon\n')).rejects.toThrow(/store.gc.grace: expected a duration/);
    // A read must keep what it found for some time: 0 would let gc take a blob between lookup and open().
    expect(() => loadConfig({ env: { WHARF_GC_IN_USE: '0s' }, flags: {} })).toThrow(
      /WHARF_GC_IN_USE: must be longer than 0/,
    );
  });
});
