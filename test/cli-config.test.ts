/**
 * Settings come from the YAML file, then WHARF_* variables, then flags; a bad
 * value is one line naming the key it came from, and a non-zero exit.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import bcrypt from 'bcryptjs';
import { loadConfig, type UpstreamSettings } from '../src/cli/config.js';
import { isPrivateUpstream } from '../src/cli/config-values.js';
import { defaultMaxConnections } from '../src/cli/open-file-limit.js';
import { repoRoot as repoRootDir, runWharf, spawnWharf } from './support/spawn-wharf.js';

let dir: string;
let file: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-config-'));
  file = join(dir, 'wharf.yaml');
  await writeFile(
    file,
    'listen: "127.0.0.1:6000"\ndata: /srv/from-file\nlog:\n  level: warn\nuploads:\n  maxAge: 2h\n',
  );
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('loadConfig', () => {
  it('has embedded defaults: port 5000 on all interfaces, ./data, info', () => {
    const config = loadConfig({ env: {}, flags: {} });
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 5000 });
    expect(config.dataDir).toBe(resolve('data'));
    expect(config.logLevel).toBe('info');
    expect(config.uploadMaxAgeMs).toBe(24 * 3600 * 1000);
  });

  it('registry.sparseManifests: off by default, on from the file or WHARF_SPARSE_MANIFESTS', async () => {
    expect(loadConfig({ env: {}, flags: {} }).sparseManifests).toBe(false);
    const sparseFile = join(dir, 'sparse.yaml');
    await writeFile(sparseFile, 'registry:\n  sparseManifests: true\n');
    expect(loadConfig({ file: sparseFile, env: {}, flags: {} }).sparseManifests).toBe(true);
    expect(loadConfig({ env: { WHARF_SPARSE_MANIFESTS: 'true' }, flags: {} }).sparseManifests).toBe(true);
  });

  it('lets env override the file and flags override env', () => {
    const fromFile = loadConfig({ file, env: {}, flags: {} });
    expect(fromFile).toMatchObject({
      listen: { host: '127.0.0.1', port: 6000 },
      dataDir: '/srv/from-file',
      logLevel: 'warn',
    });
    expect(fromFile.uploadMaxAgeMs).toBe(2 * 3600 * 1000);
    const fromEnv = loadConfig({ file, env: { WHARF_LISTEN: ':7000', WHARF_DATA: '/srv/env' }, flags: {} });
    expect(fromEnv).toMatchObject({ listen: { host: '0.0.0.0', port: 7000 }, dataDir: '/srv/env' });
    const fromFlags = loadConfig({
      file,
      env: { WHARF_LISTEN: ':7000' },
      flags: { listen: '[::1]:8000', data: '/srv/flag' },
    });
    expect(fromFlags).toMatchObject({ listen: { host: '::1', port: 8000 }, dataDir: '/srv/flag' });
  });

  it('names the key a bad value came from', () => {
    expect(() => loadConfig({ env: {}, flags: { listen: 'nope' } })).toThrow('config: --listen: expected host:port');
    expect(() => loadConfig({ env: { WHARF_LOG_LEVEL: 'loud' }, flags: {} })).toThrow(
      'config: WHARF_LOG_LEVEL: expected one of',
    );
    expect(() => loadConfig({ env: { WHARF_UPLOADS_MAX_AGE: 'soon' }, flags: {} })).toThrow(
      'config: WHARF_UPLOADS_MAX_AGE',
    );
    expect(() => loadConfig({ env: {}, flags: { listen: ':70000' } })).toThrow('config: --listen');
  });

  it('refuses unknown keys in the file, so a typo does not pass silently', async () => {
    const typo = join(dir, 'typo.yaml');
    await writeFile(typo, 'lsiten: ":5000"\n');
    expect(() => loadConfig({ file: typo, env: {}, flags: {} })).toThrow('config: lsiten: unknown option');
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'listen: [\n');
    expect(() => loadConfig({ file: broken, env: {}, flags: {} })).toThrow('config: --config:');
  });
});

// Round 5 of the planted-bug audit (docs/mutation-testing.md): defaults and refusals at their edges.
describe('safe defaults and refusals at their edges', () => {
  it('checks blob reads by default (store.verifyReads), off only when asked', () => {
    expect(loadConfig({ env: {}, flags: {} }).verifyReads).toBe(true);
    expect(loadConfig({ env: { WHARF_VERIFY_READS: 'false' }, flags: {} }).verifyReads).toBe(false);
  });

  it('takes port 65535 and refuses 65536', () => {
    expect(loadConfig({ env: {}, flags: { listen: '127.0.0.1:65535' } }).listen).toEqual({
      host: '127.0.0.1',
      port: 65535,
    });
    expect(() => loadConfig({ env: {}, flags: { listen: ':65536' } })).toThrow(
      'config: --listen: expected host:port, :port or port, got ":65536"',
    );
  });

  it('refuses a local pattern under a mirrored upstream that has a port (as names spell it, with a dash)', () => {
    expect(() =>
      loadConfig({
        env: { WHARF_LOCAL: 'localhost-5001/mine/*' },
        flags: {},
        upstreamFlags: ['localhost:5001=http://localhost:5001'],
      }),
    ).toThrow('config: local: localhost-5001/mine/* is under the mirrored upstream localhost-5001');
  });

  it('issues tokens for 5 minutes by default; 60 s is the shortest lifetime taken', async () => {
    expect(loadConfig({ env: {}, flags: {} }).auth.tokenTtlMs).toBe(300_000);
    const path = join(dir, 'ttl.yaml');
    await writeFile(path, 'auth:\n  tokenTtl: 60s\n');
    expect(loadConfig({ file: path, env: {}, flags: {} }).auth.tokenTtlMs).toBe(60_000);
    await writeFile(path, 'auth:\n  tokenTtl: 59s\n');
    expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow('config: auth.tokenTtl: must be at least 60s');
  });

  it('refuses an auth.realm that is not an http(s) URL', async () => {
    const path = join(dir, 'realm.yaml');
    for (const realm of ['wharf.example/token', 'ftp://wharf.example/token']) {
      await writeFile(path, `auth:\n  realm: ${realm}\n`);
      expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow(
        'config: auth.realm: expected the http(s) URL of /token as clients reach it',
      );
    }
    await writeFile(path, 'auth:\n  realm: https://wharf.example/token\n');
    expect(loadConfig({ file: path, env: {}, flags: {} }).auth.realm).toBe('https://wharf.example/token');
  });
});

describe('bounds and TLS settings', () => {
  it('has safe defaults: 1000 upload sessions, 100 per client, 30 s headers, 60 s idle, a connection cap', () => {
    const config = loadConfig({ env: {}, flags: {} });
    expect(config.uploads).toEqual({ maxSessions: 1000, maxSessionsPerClient: 100, emptyMaxAgeMs: 600_000 });
    expect(config.limits.headerTimeoutMs).toBe(30_000);
    expect(config.limits.idleTimeoutMs).toBe(60_000);
    expect(config.limits.maxConnections).toBe(defaultMaxConnections());
    expect(config.tls).toBeUndefined();
  });

  it('reads them from the file, the environment and flags', async () => {
    const path = join(dir, 'bounds.yaml');
    await writeFile(
      path,
      'uploads:\n  maxSessions: 50\n  maxSessionsPerClient: 5\n  emptyMaxAge: 1m\n' +
        'limits:\n  headerTimeout: 10s\n  idleTimeout: 2m\n  maxConnections: 300\n' +
        'tls:\n  cert: /etc/wharf/tls.crt\n  key: /etc/wharf/tls.key\n',
    );
    const config = loadConfig({ file: path, env: { WHARF_MAX_CONNECTIONS: '400' }, flags: { tlsKey: 'k.pem' } });
    expect(config.uploads).toEqual({ maxSessions: 50, maxSessionsPerClient: 5, emptyMaxAgeMs: 60_000 });
    expect(config.limits).toEqual({ headerTimeoutMs: 10_000, idleTimeoutMs: 120_000, maxConnections: 400 });
    expect(config.tls).toEqual({ cert: '/etc/wharf/tls.crt', key: resolve('k.pem') });
  });

  it('refuses a zero cap or timeout, and a certificate without its key', () => {
    expect(() => loadConfig({ env: { WHARF_UPLOADS_MAX_SESSIONS: '0' }, flags: {} })).toThrow(
      'config: WHARF_UPLOADS_MAX_SESSIONS: expected a whole number of at least 1',
    );
    expect(() => loadConfig({ env: { WHARF_IDLE_TIMEOUT: '0s' }, flags: {} })).toThrow(
      'config: WHARF_IDLE_TIMEOUT: must be longer than 0',
    );
    expect(() => loadConfig({ env: { WHARF_MAX_CONNECTIONS: 'many' }, flags: {} })).toThrow(
      'config: WHARF_MAX_CONNECTIONS',
    );
    expect(() => loadConfig({ env: {}, flags: { tlsCert: 'c.pem' } })).toThrow(
      'config: tls.key: is required with --tls-cert',
    );
  });

  it('prints one plain line when the certificate cannot be read', async () => {
    const missing = join(dir, 'missing.crt');
    const result = await runWharf(['serve', '--data', join(dir, 'd3'), '--tls-cert', missing, '--tls-key', missing]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`error: tls: cannot read certificate ${missing}: ENOENT\n`);
  });
});

describe('wharf serve errors', () => {
  it('prints one plain line and exits non-zero on a bad flag value', async () => {
    const result = await runWharf(['serve', '--listen', 'bogus', '--data', join(dir, 'd')]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      'error: config: --listen: expected host:port, :port or port, got "bogus"',
    ]);
  });

  it('prints one plain line for a bad environment value', async () => {
    const result = await runWharf(['serve', '--data', join(dir, 'd')], { env: { WHARF_LOG_LEVEL: 'loud' } });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^error: config: WHARF_LOG_LEVEL: expected one of .*got "loud"$/);
  });

  it('prints one plain line when the port is taken', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await runWharf(['serve', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'd2')]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toMatch(/^error: EADDRINUSE: .*address already in use/);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      blocker.close();
    }
  });
});

describe('upstream settings', () => {
  it('loads config.example.yaml as it ships, with the five built-in upstreams', () => {
    const config = loadConfig({ file: join(repoRootDir, 'config.example.yaml'), env: {}, flags: {} });
    expect(config.upstreams.map((u) => u.host)).toEqual([
      'docker.io',
      'ghcr.io',
      'quay.io',
      'registry.k8s.io',
      'gcr.io',
    ]);
    expect(config.defaultUpstream).toBeUndefined();
    expect(config.offline).toBe(false);
  });

  it('lets WHARF_UPSTREAMS and --upstream add and override upstreams, flags last', () => {
    const config = loadConfig({
      env: { WHARF_UPSTREAMS: 'docker.io=http://127.0.0.1:6000,registry.local:5000=http://127.0.0.1:6001' },
      flags: { defaultUpstream: 'docker.io', offline: 'true' },
      upstreamFlags: ['docker.io=http://127.0.0.1:7000'],
    });
    expect(config.upstreams.find((u) => u.host === 'docker.io')?.url).toBe('http://127.0.0.1:7000');
    expect(config.upstreams.find((u) => u.host === 'registry.local:5000')?.url).toBe('http://127.0.0.1:6001');
    expect(config.defaultUpstream).toBe('docker.io');
    expect(config.offline).toBe(true);
  });

  it('reads per-upstream settings from the file and removes a built-in one set to null', async () => {
    const path = join(dir, 'upstreams.yaml');
    await writeFile(
      path,
      'mirror:\n  tagTtl: 1m\nupstreams:\n  quay.io: null\n  ghcr.io:\n    token: abc\n    tagTtl: 10s\n  private.example:\n    url: http://127.0.0.1:9\n    username: u\n    password: p\n',
    );
    const config = loadConfig({ file: path, env: {}, flags: {} });
    expect(config.upstreams.map((u) => u.host)).not.toContain('quay.io');
    expect(config.upstreams.find((u) => u.host === 'ghcr.io')).toMatchObject({
      url: 'https://ghcr.io',
      token: 'abc',
      tagTtlMs: 10_000,
    });
    expect(config.upstreams.find((u) => u.host === 'docker.io')?.tagTtlMs).toBe(60_000);
    expect(config.upstreams.find((u) => u.host === 'private.example')).toMatchObject({ username: 'u', password: 'p' });
  });

  it('prefetches from every upstream unless its entry says prefetch: false (issue 12)', async () => {
    const path = join(dir, 'prefetch.yaml');
    await writeFile(path, 'upstreams:\n  ghcr.io:\n    prefetch: false\n');
    const config = loadConfig({ file: path, env: {}, flags: {} });
    expect(config.upstreams.find((u) => u.host === 'ghcr.io')?.prefetch).toBe(false);
    expect(config.upstreams.find((u) => u.host === 'docker.io')?.prefetch).toBe(true);
    await writeFile(path, 'upstreams:\n  ghcr.io:\n    prefetch: sometimes\n');
    expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow(
      'config: upstreams.ghcr.io.prefetch: expected true or false',
    );
  });

  it('marks an upstream as a mirror (sent ?ns=) from the file, WHARF_MIRROR_UPSTREAMS or --mirror-upstream', async () => {
    const path = join(dir, 'mirror.yaml');
    await writeFile(path, 'upstreams:\n  docker.io:\n    url: http://central.test:5000\n    mirror: true\n');
    const fromFile = loadConfig({ file: path, env: {}, flags: {} }).upstreams;
    expect(fromFile.find((u) => u.host === 'docker.io')).toMatchObject({
      url: 'http://central.test:5000',
      mirror: true,
    });
    expect(fromFile.find((u) => u.host === 'ghcr.io')?.mirror).toBeUndefined();
    const both = loadConfig({
      env: { WHARF_MIRROR_UPSTREAMS: 'quay.io=http://central.test:5000' },
      flags: {},
      mirrorUpstreamFlags: ['ghcr.io=http://central.test:5000'],
    }).upstreams;
    expect(both.filter((u) => u.mirror === true).map((u) => u.host)).toEqual(['ghcr.io', 'quay.io']);
    // A path would name the upstream a second way (the central stores it as part of the name).
    expect(() =>
      loadConfig({ env: {}, flags: {}, mirrorUpstreamFlags: ['ghcr.io=http://central.test/ghcr.io'] }),
    ).toThrow('config: upstreams.ghcr.io: a mirror upstream is sent ?ns=ghcr.io and takes a URL without a path');
  });

  it('names the key of a bad upstream value', async () => {
    expect(() => loadConfig({ env: {}, flags: {}, upstreamFlags: ['nourl'] })).toThrow(
      'config: --upstream: expected host=url',
    );
    expect(() => loadConfig({ env: {}, flags: {}, upstreamFlags: ['x.io=ftp://a'] })).toThrow(
      'config: --upstream: URL must be http or https',
    );
    expect(() => loadConfig({ env: { WHARF_UPSTREAMS: 'Bad Host=http://a' }, flags: {} })).toThrow(
      'config: WHARF_UPSTREAMS: invalid registry host',
    );
    expect(() => loadConfig({ env: {}, flags: { defaultUpstream: 'nowhere.io' } })).toThrow(
      'config: --default-upstream: nowhere.io is not a configured upstream',
    );
    expect(() => loadConfig({ env: { WHARF_OFFLINE: 'maybe' }, flags: {} })).toThrow(
      'config: WHARF_OFFLINE: expected true or false',
    );
    const path = join(dir, 'bad-upstream.yaml');
    await writeFile(path, 'upstreams:\n  new.example:\n    tagTtl: 5m\n');
    expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow(
      'config: upstreams.new.example.url: is required',
    );
    await writeFile(path, 'upstreams:\n  ghcr.io:\n    pasword: x\n');
    expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow(
      'config: upstreams.ghcr.io.pasword: unknown option',
    );
  });
});

describe('auth and local settings', () => {
  it('reads users from an htpasswd file and the config, rules, and local patterns', async () => {
    const htpasswd = join(dir, 'htpasswd');
    const hash = bcrypt.hashSync('pw', 4);
    await writeFile(htpasswd, `# users\nalice:${hash}\n\n`);
    const path = join(dir, 'auth.yaml');
    await writeFile(
      path,
      [
        'defaultUpstream: docker.io',
        'local: ["team/*", "ci/**"]',
        'auth:',
        `  htpasswd: ${htpasswd}`,
        '  users:',
        `    ci: "${hash}"`,
        '  tokenTtl: 2m',
        '  access:',
        '    - { repositories: ["team/**"], users: [alice], allow: [pull, push] }',
      ].join('\n'),
    );
    const config = loadConfig({ file: path, env: {}, flags: {} });
    expect([...config.auth.users.keys()]).toEqual(['alice', 'ci']);
    expect(config.auth.tokenTtlMs).toBe(120_000);
    expect(config.auth.access).toEqual([{ repositories: ['team/**'], users: ['alice'], allow: ['pull', 'push'] }]);
    expect(config.local).toEqual(['team/*', 'ci/**']);
    expect(loadConfig({ file: path, env: { WHARF_LOCAL: 'x/*' }, flags: {} }).local).toEqual(['x/*']);
    expect(loadConfig({ file: path, env: {}, flags: {}, localFlags: ['y/*'] }).local).toEqual(['y/*']);
  });

  it('refuses plain-text passwords, unknown actions and local names under a mirrored host', async () => {
    const htpasswd = join(dir, 'plain-htpasswd');
    await writeFile(htpasswd, 'alice:secret\n');
    expect(() => loadConfig({ env: {}, flags: { htpasswd } })).toThrow(
      'config: auth.htpasswd: ' + htpasswd + ': line 1 (alice): only bcrypt hashes are accepted',
    );
    const path = join(dir, 'bad-auth.yaml');
    await writeFile(path, 'auth:\n  users:\n    bob: secret\n');
    expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow(
      'config: auth.users.bob: expected a bcrypt hash',
    );
    await writeFile(path, 'auth:\n  access:\n    - { repositories: ["**"], users: [bob], allow: [fly] }\n');
    expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow(
      'config: auth.access[0].allow: unknown action',
    );
    await writeFile(path, 'auth:\n  tokenTtl: 30s\n');
    expect(() => loadConfig({ file: path, env: {}, flags: {} })).toThrow('config: auth.tokenTtl: must be at least 60s');
    expect(() => loadConfig({ env: { WHARF_LOCAL: 'docker.io/mine/*' }, flags: {} })).toThrow(
      'config: local: docker.io/mine/* is under the mirrored upstream docker.io',
    );
  });

  it('reads ~/.docker/config.json only for upstreams that opt in, and calls credentialed upstreams private', async () => {
    const path = join(dir, 'private.yaml');
    await writeFile(
      path,
      'upstreams:\n  ghcr.io:\n    token: abc\n  quay.io:\n    dockerConfig: true\n  registry.k8s.io:\n    username: u\n    password: p\n    public: true\n',
    );
    const config = loadConfig({ file: path, env: {}, flags: {} });
    const byHost = new Map(config.upstreams.map((u) => [u.host, u]));
    expect(byHost.get('docker.io')?.dockerConfig).toBe(false);
    expect(isPrivateUpstream(byHost.get('docker.io') as UpstreamSettings)).toBe(false);
    expect(isPrivateUpstream(byHost.get('ghcr.io') as UpstreamSettings)).toBe(true);
    expect(isPrivateUpstream(byHost.get('quay.io') as UpstreamSettings)).toBe(true);
    expect(isPrivateUpstream(byHost.get('registry.k8s.io') as UpstreamSettings)).toBe(false);
  });
});

describe('start-up warnings', () => {
  it('warns when anyone who can reach a non-loopback address may push, and not once users exist', async () => {
    const open = await spawnWharf(['--listen', '0.0.0.0:0', '--data', join(dir, 'warn-open')]);
    try {
      expect(open.output()).toContain('anyone who can reach this address may push to local names');
    } finally {
      await open.kill();
    }
    const htpasswd = join(dir, 'warn-htpasswd');
    await writeFile(htpasswd, `alice:${bcrypt.hashSync('pw', 4)}\n`);
    const closed = await spawnWharf([
      '--listen',
      '0.0.0.0:0',
      '--data',
      join(dir, 'warn-closed'),
      '--htpasswd',
      htpasswd,
    ]);
    try {
      expect(closed.output()).not.toContain('may push to local names');
    } finally {
      await closed.kill();
    }
  });
});

describe('mirror.maxConcurrentFills', () => {
  it('defaults to 8, is read from the file and WHARF_MAX_CONCURRENT_FILLS, and refuses what is not a count', async () => {
    expect(loadConfig({ env: {}, flags: {} }).maxConcurrentFills).toBe(8);
    const path = join(dir, 'fills.yaml');
    await writeFile(path, 'mirror:\n  maxConcurrentFills: 3\n');
    expect(loadConfig({ file: path, env: {}, flags: {} }).maxConcurrentFills).toBe(3);
    expect(loadConfig({ file: path, env: { WHARF_MAX_CONCURRENT_FILLS: '20' }, flags: {} }).maxConcurrentFills).toBe(
      20,
    );
    for (const bad of ['0', '-1', '2.5', 'many']) {
      expect(() => loadConfig({ env: { WHARF_MAX_CONCURRENT_FILLS: bad }, flags: {} })).toThrow(
        'config: WHARF_MAX_CONCURRENT_FILLS: expected a whole number from 1',
      );
    }
  });
});
