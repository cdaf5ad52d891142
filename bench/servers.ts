/**
 * @module bench/servers
 * The servers under test, each a child process on 127.0.0.1: CNCF distribution (as the upstream
 * and as a pull-through cache), wharf (from a snapshot of dist/), and nginx (the static ceiling).
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort } from '../test/support/distribution.js';
import { isShuttingDown, makeTempDir, removeTempDir, spawnTracked, stopProcess, type Exited } from './processes.js';

export const mirroredHost = 'registry.example.test';

export interface Server {
  name: string;
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port>, what skopeo wants */
  host: string;
  pid: number;
  dataDir: string;
  /** From spawn to the first answer on the readiness path. */
  readyMs: number;
  output(): string;
  /** Stops the process; the data dir stays unless `removeData`. */
  close(options?: { removeData?: boolean }): Promise<void>;
}

interface Launch {
  name: string;
  cmd: string;
  args: (host: string) => Promise<string[]>;
  dataDir: string;
  readyPath: string;
  keepOutput?: boolean;
  /** Removed with the data when the server is closed with removeData. */
  ownedDirs: string[];
}

class EarlyExit extends Error {}

async function launchOnce(spec: Launch, timeoutMs: number): Promise<Server> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const args = await spec.args(host);
  const started = performance.now();
  const proc = spawnTracked(spec.cmd, args, { keepOutput: spec.keepOutput ?? false });
  let exitedEarly: Exited | undefined;
  void proc.exited.then((e) => (exitedEarly = e));
  const deadline = started + timeoutMs;
  for (;;) {
    if (exitedEarly !== undefined) {
      throw new EarlyExit(
        `${spec.name}: exited (${exitedEarly.code ?? exitedEarly.signal}) before answering:\n${proc.output()}`,
      );
    }
    try {
      const response = await fetch(`${url}${spec.readyPath}`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      await stopProcess(proc.child, proc.exited);
      throw new Error(`${spec.name}: GET ${spec.readyPath} got no 200 within ${timeoutMs} ms:\n${proc.output()}`);
    }
    await sleep(2);
  }
  const readyMs = performance.now() - started;
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`${spec.name}: no pid`);
  let closing = false;
  // A server that dies mid-run is a finding in itself: say so loudly, with its last words.
  void proc.exited.then((e) => {
    if (closing || isShuttingDown()) return;
    console.error(
      `bench: ${spec.name} (pid ${pid}) exited unexpectedly (${e.code ?? e.signal}); its last output:\n${proc.output().slice(-4000)}`,
    );
  });
  return {
    name: spec.name,
    url,
    host,
    pid,
    dataDir: spec.dataDir,
    readyMs,
    output: proc.output,
    async close(options = {}) {
      closing = true;
      await stopProcess(proc.child, proc.exited);
      if (options.removeData === true) for (const dir of spec.ownedDirs) await removeTempDir(dir);
    },
  };
}

/** A free port can be taken between the probe and the bind: a couple of fresh ports cover that. */
async function launch(spec: Launch, timeoutMs = 20_000): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchOnce(spec, timeoutMs);
    } catch (error) {
      if (!(error instanceof EarlyExit) || attempt >= 3) throw error;
    }
  }
}

/**
 * CNCF distribution with filesystem storage in a fresh temp dir. `proxyOf` makes it a pull-through
 * cache. The upstream keeps its access log (it counts upstream requests); the proxy runs without
 * one, as wharf runs at log level warn.
 */
export async function startDistribution(options: {
  name: string;
  proxyOf?: string;
  /** Reuse this work dir (config and data) from an earlier start: a warm restart. */
  workDir?: string;
}): Promise<Server> {
  const work = options.workDir ?? (await makeTempDir('distribution'));
  const dataDir = join(work, 'data');
  await mkdir(dataDir, { recursive: true });
  const isProxy = options.proxyOf !== undefined;
  return launch({
    name: options.name,
    cmd: 'docker-registry',
    dataDir,
    readyPath: '/v2/',
    keepOutput: !isProxy,
    ownedDirs: [work],
    args: async (host) => {
      const config = {
        version: 0.1,
        log: { level: 'error', accesslog: { disabled: isProxy } },
        storage: { filesystem: { rootdirectory: dataDir }, delete: { enabled: true } },
        http: { addr: host, secret: 'bench-only' },
        ...(isProxy ? { proxy: { remoteurl: options.proxyOf } } : {}),
      };
      const file = join(work, 'config.yml');
      await writeFile(file, stringify(config));
      return ['serve', file];
    },
  });
}

/**
 * wharf from `distDir` (a snapshot of dist/, so a rebuild during the run cannot change what is
 * measured), mirroring `upstreamUrl` as registry.example.test. A given `dataDir` is reused (warm).
 */
export async function startWharf(options: {
  distDir: string;
  upstreamUrl: string;
  dataDir?: string;
  /** Also mirror the upstream as docker.io, the default upstream (docker's registry-mirrors sends plain names). */
  asDockerHub?: boolean;
}): Promise<Server> {
  const dataDir = options.dataDir ?? (await makeTempDir('wharf'));
  return launch({
    name: 'wharf',
    cmd: process.execPath,
    dataDir,
    readyPath: '/v2/',
    ownedDirs: [dataDir],
    args: async (host) => [
      join(options.distDir, 'cli', 'main.js'),
      'serve',
      '--listen',
      host,
      '--data',
      dataDir,
      '--log-level',
      'warn',
      '--upstream',
      `${mirroredHost}=${options.upstreamUrl}`,
      ...(options.asDockerHub === true
        ? ['--upstream', `docker.io=${options.upstreamUrl}`, '--default-upstream', 'docker.io']
        : []),
    ],
  });
}

/**
 * The shaped link (bench/shaped-relay.ts) in front of `target` (host:port), in a process of its
 * own: `rttMs` round trip, `mbPerSecond` per connection and direction. Its output ends with
 * `bytes <n>` (relayed from the target) once closed.
 */
export async function startRelay(options: { target: string; rttMs: number; mbPerSecond: number }): Promise<Server> {
  const work = await makeTempDir('relay');
  return launch({
    name: 'relay',
    cmd: process.execPath,
    dataDir: work,
    // Answered by the target through the relay: ready means relaying.
    readyPath: '/v2/',
    keepOutput: true,
    ownedDirs: [work],
    args: async (host) => [
      '--import',
      'tsx',
      fileURLToPath(new URL('shaped-relay.ts', import.meta.url)),
      host,
      options.target,
      String(options.rttMs),
      String(options.mbPerSecond),
    ],
  });
}

/** nginx with sendfile on, serving `root` (files must be readable): the static-file ceiling. */
export async function startNginx(root: string): Promise<Server> {
  const work = await makeTempDir('nginx');
  await mkdir(join(work, 'tmp'));
  const nginx = '/usr/sbin/nginx';
  return launch({
    name: 'nginx',
    cmd: nginx,
    dataDir: root,
    readyPath: '/',
    ownedDirs: [work],
    args: async (host) => {
      const user = process.getuid?.() === 0 ? 'user root;\n' : '';
      const conf = `${user}daemon off;
worker_processes auto;
pid ${work}/nginx.pid;
error_log ${work}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${work}/tmp;
  default_type application/octet-stream;
  server {
    listen ${host};
    root ${root};
    location / { }
  }
}
`;
      const file = join(work, 'nginx.conf');
      await writeFile(file, conf);
      return ['-p', work, '-e', join(work, 'error.log'), '-c', file];
    },
  });
}
