/**
 * What an operator would notice in wharf's configuration (round 11a of hand-planted bugs): a bare
 * number read in the wrong unit, a default moved, an override that drops the file's credentials,
 * a timeout key read into another phase, a bad value accepted instead of one plain line.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/cli/config.js';
import { formatMirrorConfig } from '../src/cli/mirror-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-config-operator-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function fileOf(yaml: string): Promise<string> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, yaml);
  return file;
}

describe('durations', () => {
  it('reads a bare number as seconds, from the file (a YAML number) and the environment', async () => {
    const file = await fileOf('mirror:\n  tagTtl: 90\nshutdown:\n  grace: 3\n');
    const config = loadConfig({ file, env: {}, flags: {} });
    expect(config.upstreams.find((u) => u.host === 'docker.io')?.tagTtlMs).toBe(90_000);
    expect(config.shutdownGraceMs).toBe(3_000);
    expect(loadConfig({ env: { WHARF_UPLOADS_MAX_AGE: '45' }, flags: {} }).uploadMaxAgeMs).toBe(45_000);
  });

  it('keeps its defaults: tags 5 min, not-found answers 30 s, shutdown 10 s, uploads 24 h', () => {
    const config = loadConfig({ env: {}, flags: {} });
    for (const upstream of config.upstreams) {
      expect({ host: upstream.host, tag: upstream.tagTtlMs, notFound: upstream.notFoundTtlMs }).toEqual({
        host: upstream.host,
        tag: 300_000,
        notFound: 30_000,
      });
    }
    expect(config.shutdownGraceMs).toBe(10_000);
    expect(config.uploads.emptyMaxAgeMs).toBe(600_000);
  });
});

describe('upstream entries', () => {
  it('reads connectTimeout, responseTimeout and idleTimeout into their own phases', async () => {
    const file = await fileOf(
      'upstreams:\n  ghcr.io:\n    connectTimeout: 1s\n    responseTimeout: 2s\n    idleTimeout: 3s\n  quay.io:\n    idleTimeout: 4s\n',
    );
    const config = loadConfig({ file, env: {}, flags: {} });
    expect(config.upstreams.find((u) => u.host === 'ghcr.io')?.timeouts).toEqual({
      connectMs: 1_000,
      headersMs: 2_000,
      bodyIdleMs: 3_000,
    });
    expect(config.upstreams.find((u) => u.host === 'quay.io')?.timeouts).toEqual({ bodyIdleMs: 4_000 });
  });

  it('keeps the file entry (credentials, TTLs) when WHARF_UPSTREAMS or --upstream only moves its URL', async () => {
    const file = await fileOf(
      'upstreams:\n  ghcr.io:\n    username: u\n    password: p\n    tagTtl: 10s\n    dockerConfig: true\n  quay.io:\n    token: t\n',
    );
    const config = loadConfig({
      file,
      env: { WHARF_UPSTREAMS: 'quay.io=http://127.0.0.1:6001' },
      flags: {},
      upstreamFlags: ['ghcr.io=http://127.0.0.1:6000'],
    });
    expect(config.upstreams.find((u) => u.host === 'ghcr.io')).toMatchObject({
      url: 'http://127.0.0.1:6000',
      username: 'u',
      password: 'p',
      tagTtlMs: 10_000,
      dockerConfig: true,
    });
    expect(config.upstreams.find((u) => u.host === 'quay.io')).toMatchObject({
      url: 'http://127.0.0.1:6001',
      token: 't',
    });
  });
});

describe('store: keys at their edges', () => {
  it('refuses a low-water mark of the whole store (100 % or maxSize itself), naming the key', async () => {
    for (const mark of ['100%', '1GiB']) {
      const file = await fileOf(`store:\n  maxSize: 1GiB\n  lowWaterMark: '${mark}'\n`);
      expect(() => loadConfig({ file, env: {}, flags: {} })).toThrow(
        `config: store.lowWaterMark: must be below store.maxSize (${2 ** 30} bytes) and above 0`,
      );
    }
    const justBelow = await fileOf('store:\n  maxSize: 1GiB\n  lowWaterMark: 99%\n');
    expect(loadConfig({ file: justBelow, env: {}, flags: {} }).lifecycle.lowWaterBytes).toBe(
      Math.floor(0.99 * 2 ** 30),
    );
  });

  it('refuses store.gc.inUse of 0 (a read would protect nothing), naming where it came from', async () => {
    expect(() => loadConfig({ env: { WHARF_GC_IN_USE: '0s' }, flags: {} })).toThrow(
      'config: WHARF_GC_IN_USE: must be longer than 0',
    );
    const file = await fileOf('store:\n  gc:\n    inUse: 0\n');
    expect(() => loadConfig({ file, env: {}, flags: {} })).toThrow('config: store.gc.inUse: must be longer than 0');
  });

  it('lets WHARF_STORE_PIN replace the file’s store.pin, as every other variable overrides the file', async () => {
    const file = await fileOf("store:\n  pin: ['from-file/*']\n");
    expect(loadConfig({ file, env: {}, flags: {} }).lifecycle.pin).toEqual(['from-file/*']);
    expect(loadConfig({ file, env: { WHARF_STORE_PIN: 'from-env/*,team/**' }, flags: {} }).lifecycle.pin).toEqual([
      'from-env/*',
      'team/**',
    ]);
  });
});

describe('wharf mirror-config', () => {
  it('refuses a URL with only a user name in it, as one with a password', () => {
    for (const url of ['http://robot@mirror.local:5000', 'http://:secret@mirror.local:5000']) {
      expect(() => formatMirrorConfig('docker', { url, registries: ['docker.io'] })).toThrow(
        `mirror-config: url ${JSON.stringify(url)}: credentials do not belong in a mirror URL`,
      );
    }
  });
});
