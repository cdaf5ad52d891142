/**
 * What a new user meets in the first hour (issue 9, "The first hour"): every documented --listen
 * form, `wharf --version`, `mirror-config --out`, an offline miss that says why, permission errors
 * naming the path and the option, a scalar where a config map is expected, SIGHUP without TLS.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseListen } from '../src/cli/config.js';
import { explainError } from '../src/cli/explain-error.js';
import { call } from './support/http.js';
import { repoRoot, runWharf, spawnWharf } from './support/spawn-wharf.js';
import { startWharf } from './support/wharf.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-first-hour-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('--listen', () => {
  // Regression: "5000" was read as host "500", port "0" (EADDRNOTAVAIL … 0.0.1.244).
  it.each([
    ['5000', { host: '0.0.0.0', port: 5000 }],
    ['0', { host: '0.0.0.0', port: 0 }],
    [':5000', { host: '0.0.0.0', port: 5000 }],
    ['127.0.0.1:5000', { host: '127.0.0.1', port: 5000 }],
    ['0.0.0.0:5000', { host: '0.0.0.0', port: 5000 }],
    ['localhost:5000', { host: 'localhost', port: 5000 }],
    ['mirror.example.test:80', { host: 'mirror.example.test', port: 80 }],
    ['[::1]:5000', { host: '::1', port: 5000 }],
    ['[::]:5000', { host: '::', port: 5000 }],
    [' 5000 ', { host: '0.0.0.0', port: 5000 }],
  ])('reads %j as %j', (value, expected) => {
    expect(parseListen({ value, from: '--listen' })).toEqual(expected);
  });

  it.each(['', 'nope', '5000x', '::1:5000', '[::1]', '127.0.0.1:', ':70000', '123456', '[zz]:5000'])(
    'refuses %j naming the option',
    (value) => {
      expect(() => parseListen({ value, from: '--listen' })).toThrow('config: --listen: expected host:port');
    },
  );
});

describe('the command line', () => {
  it('prints its version', async () => {
    const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const result = await runWharf(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it('writes mirror-config files under --out instead of printing them', async () => {
    const out = join(dir, 'mirror-config');
    const result = await runWharf([
      'mirror-config',
      'containerd',
      '--url',
      'http://mirror.example.test:5000',
      '--registry',
      'docker.io',
      '--registry',
      'ghcr.io',
      '--out',
      out,
    ]);
    expect(result.code).toBe(0);
    for (const host of ['docker.io', 'ghcr.io']) {
      const written = await readFile(join(out, 'etc/containerd/certs.d', host, 'hosts.toml'), 'utf8');
      expect(written).toContain('http://mirror.example.test:5000');
      expect(result.stdout).toContain(join(out, 'etc/containerd/certs.d', host, 'hosts.toml'));
    }
    expect(result.stdout).not.toContain('[host.');
  });

  it('names the path and the option when the data directory may not be written, without the code twice', async () => {
    // Root ignores file modes; sysfs refuses a new directory even to root (EPERM), which is the same case.
    const result = await runWharf(['serve', '--listen', '127.0.0.1:0', '--data', '/sys/wharf-test-data']);
    expect(result.code).toBe(1);
    const line = result.stderr.trim();
    expect(line).toMatch(/^error: (EPERM|EACCES): cannot mkdir \/sys\/wharf-test-data: permission denied/);
    expect(line).toContain('--data');
    expect(line).not.toMatch(/(EPERM|EACCES): \1/);
  });

  it('explains EACCES and EROFS the same way, and leaves other errors their one code', () => {
    const denied = Object.assign(new Error("EACCES: permission denied, open '/srv/wharf/tmp/x'"), {
      code: 'EACCES',
      syscall: 'open',
      path: '/srv/wharf/tmp/x',
    });
    expect(explainError(denied, [{ path: '/srv/wharf', option: '--data' }])).toBe(
      'EACCES: cannot open /srv/wharf/tmp/x: permission denied (set by --data: choose a path this user may write, or fix its owner)',
    );
    const readOnly = Object.assign(new Error('EROFS: read-only file system'), {
      code: 'EROFS',
      syscall: 'mkdir',
      path: '/ro/x',
    });
    expect(explainError(readOnly)).toBe('EROFS: cannot mkdir /ro/x: the file system is read-only');
    const inUse = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:5000'), {
      code: 'EADDRINUSE',
    });
    expect(explainError(inUse)).toBe('EADDRINUSE: listen EADDRINUSE: address already in use 127.0.0.1:5000');
    const own = Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' });
    expect(explainError(own)).toBe('EPERM: operation not permitted');
  });

  it('keeps running on SIGHUP without TLS (its default action would end the process)', async () => {
    const wharf = await spawnWharf(['--data', join(dir, 'sighup')]);
    try {
      wharf.child.kill('SIGHUP');
      await new Promise((resolve) => setTimeout(resolve, 500));
      // Killed by a signal, exitCode stays null: signalCode says so.
      expect(wharf.child.signalCode).toBeNull();
      expect(wharf.child.exitCode).toBeNull();
      expect((await call(wharf.url, '/healthz')).status).toBe(200);
    } finally {
      await wharf.kill();
    }
  }, 30_000);

  it('prints the startup banner as a JSON log line, even at --log-level warn', async () => {
    const wharf = await spawnWharf(['--data', join(dir, 'banner')]);
    try {
      const banner = wharf
        .output()
        .split('\n')
        .find((line) => line.includes('listening on'));
      const parsed = JSON.parse(banner ?? '') as { level: number; msg: string; listen: string };
      expect(parsed.level).toBe(30);
      expect(parsed.msg).toBe(`wharf listening on ${wharf.url}, data in ${join(dir, 'banner')}`);
      expect(parsed.listen).toBe(wharf.host);
    } finally {
      await wharf.kill();
    }
  }, 30_000);
});

describe('config', () => {
  it('says a section needs a map when given a scalar (log: debug)', async () => {
    const file = join(dir, 'scalar.yaml');
    await writeFile(file, 'log: debug\n');
    expect(() => loadConfig({ file, env: {}, flags: {} })).toThrow(
      'config: log: expected a map with log.level, log.format, log.access, got "debug"',
    );
  });

  it('reads log.access and metrics.public from the file and the environment', async () => {
    const file = join(dir, 'observe.yaml');
    await writeFile(file, 'log:\n  access: false\nmetrics:\n  public: true\n');
    expect(loadConfig({ env: {}, flags: {} })).toMatchObject({ accessLog: true, metricsPublic: false });
    expect(loadConfig({ file, env: {}, flags: {} })).toMatchObject({ accessLog: false, metricsPublic: true });
    expect(loadConfig({ file, env: { WHARF_LOG_ACCESS: 'true', WHARF_METRICS_PUBLIC: '0' }, flags: {} })).toMatchObject(
      { accessLog: true, metricsPublic: false },
    );
    expect(() => loadConfig({ env: { WHARF_LOG_ACCESS: 'yes' }, flags: {} })).toThrow(
      'config: WHARF_LOG_ACCESS: expected true or false',
    );
  });
});

describe('offline', () => {
  it('says that wharf is offline and the image is not cached, with the spec 404 codes', async () => {
    const wharf = await startWharf({
      offline: true,
      upstreams: [{ host: 'registry.example.test', url: 'http://127.0.0.1:9' }],
    });
    try {
      const manifest = await call(wharf.url, '/v2/registry.example.test/team/app/manifests/v1');
      expect(manifest.status).toBe(404);
      const body = (await manifest.json()) as { errors: { code: string; message: string }[] };
      expect(body.errors[0]?.code).toBe('MANIFEST_UNKNOWN');
      expect(body.errors[0]?.message).toBe(
        'wharf is offline and registry.example.test/team/app:v1 is not cached here; it cannot be fetched from registry.example.test',
      );
      const digest = `sha256:${'a'.repeat(64)}`;
      const blob = await call(wharf.url, `/v2/registry.example.test/team/app/blobs/${digest}`);
      expect(blob.status).toBe(404);
      const blobBody = (await blob.json()) as { errors: { code: string; message: string }[] };
      expect(blobBody.errors[0]?.code).toBe('BLOB_UNKNOWN');
      expect(blobBody.errors[0]?.message).toContain('wharf is offline');
      const byDigest = await call(wharf.url, `/v2/registry.example.test/team/app/manifests/${digest}`);
      expect(byDigest.status).toBe(404);
      expect(((await byDigest.json()) as { errors: { message: string }[] }).errors[0]?.message).toContain(
        `team/app@${digest} is not cached`,
      );
      expect(
        (await call(wharf.url, `/v2/registry.example.test/team/app/blobs/${digest}`, { method: 'HEAD' })).status,
      ).toBe(404);
    } finally {
      await wharf.close();
    }
  });
});
