/**
 * @module test/support/dockerd
 * A private Docker Engine per test: one `dockerd` with everything under a fresh temp dir (data
 * root, exec root, pidfile, API socket, trust key, its own containerd) and no host networking
 * changes, plus the docker CLI pointed at it with a private DOCKER_CONFIG, so `docker login`
 * writes there and never to ~/.docker.
 *
 * What docker sends to a mirror: `registry-mirrors` applies to Docker Hub names only. For
 * `docker pull tiny:single` the mirror gets `GET /v2/` then
 * `GET /v2/library/tiny/manifests/single` (docker adds `library/`, sends no `ns=`), then blobs by
 * digest. When the mirror fails, docker silently falls back to registry-1.docker.io: a test must
 * check that the mirror served the pull, not only that the pull succeeded. Here that fallback
 * goes to a dead local proxy (see noEgress), so it fails instead of reaching the network.
 *
 * Isolation between daemons running at the same time (vitest runs two files at once): each
 * dockerd starts its own containerd under its exec root (socket, state) and data root (content),
 * so nothing is shared. dockerd would instead use a system containerd if one listened on
 * /run/containerd/containerd.sock; each daemon then still gets its own containerd namespaces.
 * The trust key goes into the temp dir too (dockerd 20.10 writes /etc/docker/key.json otherwise).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, readFileSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deadServerHost, unmountAll } from './containerd.js';
import { run, withDeadline, type RunResult } from './run.js';

export interface StartDockerdOptions {
  /** `registry-mirrors` in daemon.json, e.g. `http://127.0.0.1:PORT`. Read once, at start. */
  registryMirrors?: string[];
  /** `insecure-registries`, e.g. `127.0.0.1:PORT` (plain HTTP push and pull). */
  insecureRegistries?: string[];
  /**
   * Settings laid over the daemon.json written here, as an operator merges what
   * `wharf mirror-config docker` prints into /etc/docker/daemon.json (they win over the two above).
   */
  daemonJson?: Record<string, unknown>;
  /** Deadline for `docker version` to answer; default 60 s (the machine is shared). */
  readyTimeoutMs?: number;
}

export interface DockerOptions {
  /** Kills the CLI after this long; default 120 s. */
  timeoutMs?: number;
  /** Written to the CLI's stdin (`login --password-stdin`, `import -`, `load`). */
  input?: string | Buffer;
}

export interface DockerdHandle {
  /** The temp dir holding everything; removed by close(). */
  dir: string;
  /** `unix://<dir>/docker.sock`: what DOCKER_HOST is set to for the CLI. */
  host: string;
  /** The docker CLI's private config dir (DOCKER_CONFIG): `config.json` with logins lands here. */
  configDir: string;
  /** dockerd's data root: images, layers (vfs copies) and its containerd's content. */
  dataRoot: string;
  /** Runs the docker CLI against this daemon; rejects with RunError on a non-zero exit. */
  docker(args: readonly string[], options?: DockerOptions): Promise<RunResult>;
  /** Everything dockerd (and the containerd it started) printed so far. */
  logs(): string;
  close(): Promise<void>;
}

const dockerTimeoutMs = 120_000;

/**
 * dockerd's registry client honours the proxy variables and never proxies loopback addresses
 * (Go's net/http). A dead proxy on 127.0.0.1:1 (see deadServerHost) therefore leaves every
 * loopback registry reachable and turns anything else, such as the silent fallback to
 * registry-1.docker.io after a mirror failure, into an immediate local connection refusal:
 * no DNS query, no packet leaves the machine.
 */
const noEgress: Record<string, string> = {
  HTTP_PROXY: `http://${deadServerHost}`,
  HTTPS_PROXY: `http://${deadServerHost}`,
  NO_PROXY: '127.0.0.0/8,::1,localhost',
  http_proxy: `http://${deadServerHost}`,
  https_proxy: `http://${deadServerHost}`,
  no_proxy: '127.0.0.0/8,::1,localhost',
};
// sockaddr_un.sun_path is 108 bytes on Linux, terminating NUL included. dockerd puts its
// containerd's sockets under the exec root; this one is the longest path it binds.
const maxSocketPath = 107;
const longestSocket = join('exec', 'containerd', 'containerd.sock.ttrpc');

/** dockerd lives in /usr/sbin, which a non-login PATH may lack. */
async function findDockerd(): Promise<string | undefined> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, 'dockerd');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** The PID in a pidfile, or undefined when there is none (not written yet, or removed on exit). */
function readPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** True while `pid` runs; a zombie (exited, not yet reaped by whichever init adopted it) counts as gone. */
export function isProcessRunning(pid: number): boolean {
  try {
    // /proc/<pid>/stat is "pid (comm) state ...": the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitForPidGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessRunning(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Starts `dockerd` (storage-driver vfs: no overlay mounts; no bridge, iptables, forwarding or
 * masquerading: nothing changes on the host's network) and resolves once `docker version`
 * answers on its socket. Needs root. Fails loudly when dockerd is missing: a client test must
 * not pass by skipping.
 */
export async function startDockerd(options: StartDockerdOptions = {}): Promise<DockerdHandle> {
  const executable = await findDockerd();
  if (executable === undefined) {
    throw new Error('startDockerd: dockerd not found. Install Docker Engine: bash scripts/install-test-deps.sh');
  }
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const dir = await mkdtemp(join(tmpdir(), 'wharf-dockerd-'));
  if (join(dir, longestSocket).length > maxSocketPath) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`startDockerd: ${join(dir, longestSocket)} is too long for a unix socket; set TMPDIR=/tmp`);
  }
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const configDir = join(dir, 'client');
  const dataRoot = join(dir, 'root');
  const execRoot = join(dir, 'exec');
  const pidfile = join(dir, 'docker.pid');
  const configFile = join(dir, 'daemon.json');
  await mkdir(configDir);
  await writeFile(
    configFile,
    JSON.stringify({
      'registry-mirrors': options.registryMirrors ?? [],
      'insecure-registries': options.insecureRegistries ?? [],
      ...options.daemonJson,
      'storage-driver': 'vfs',
      iptables: false,
      'ip-forward': false,
      'ip-masq': false,
      bridge: 'none',
      // dockerd 20.10 keeps a libtrust key, by default /etc/docker/key.json (shared by every
      // daemon); this key has no command-line flag.
      'deprecated-key-path': join(dir, 'key.json'),
    }),
  );
  // Only used when dockerd attaches to a shared system containerd; unique per daemon either way.
  const namespace = `wharf-${basename(dir).slice('wharf-dockerd-'.length)}`;
  const args = [
    '--config-file',
    configFile,
    '--data-root',
    dataRoot,
    '--exec-root',
    execRoot,
    '--pidfile',
    pidfile,
    '--host',
    host,
    '--containerd-namespace',
    namespace,
    '--containerd-plugins-namespace',
    `${namespace}-plugins`,
  ];

  const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...noEgress } });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  const containerdPidfile = join(execRoot, 'containerd', 'containerd.pid');
  // If the test process dies without close(), at least the daemons end (synchronously: 'exit' allows nothing else).
  const killOnExit = (): void => {
    signal(readPid(containerdPidfile), 'SIGKILL');
    if (!hasExited(child)) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const docker = (dockerArgs: readonly string[], dockerOptions: DockerOptions = {}): Promise<RunResult> =>
    run('docker', dockerArgs, {
      timeoutMs: dockerOptions.timeoutMs ?? dockerTimeoutMs,
      input: dockerOptions.input,
      // DOCKER_HOST wins over any context; an inherited TLS setting would break a unix socket.
      env: {
        DOCKER_HOST: host,
        DOCKER_CONFIG: configDir,
        DOCKER_CONTEXT: '',
        DOCKER_TLS_VERIFY: '',
        DOCKER_CERT_PATH: '',
      },
    });

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', killOnExit);
    const containerdPid = readPid(containerdPidfile);
    // The pidfile names the daemon; it is the child spawned here, which also tells when it has exited.
    const pid = readPid(pidfile) ?? child.pid;
    if (pid !== undefined && !hasExited(child)) {
      signal(pid, 'SIGTERM');
      try {
        await withDeadline(waitForExit(child), 20_000, `dockerd in ${dir} exiting after SIGTERM`);
      } catch {
        signal(pid, 'SIGKILL');
        await withDeadline(waitForExit(child), 5_000, `dockerd in ${dir} exiting after SIGKILL`);
      }
    }
    // A clean dockerd stops its containerd; a killed one leaves it running.
    if (containerdPid !== undefined && !(await waitForPidGone(containerdPid, 5_000))) {
      signal(containerdPid, 'SIGKILL');
      await waitForPidGone(containerdPid, 5_000);
    }
    // dockerd bind-mounts its data root onto itself; a clean exit undoes it, a killed one does not.
    await unmountAll(dir);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + readyTimeoutMs;
  let lastProblem = 'no answer yet';
  for (;;) {
    if (spawnError !== undefined) {
      await close();
      throw new Error(`startDockerd: spawn failed: ${spawnError.message}`);
    }
    if (hasExited(child)) {
      await close();
      throw new Error(`startDockerd: dockerd exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    try {
      await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 });
      break;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(
        `startDockerd: docker version did not answer within ${readyTimeoutMs} ms (${lastProblem}):\n${output}`,
      );
    }
    await sleep(200);
  }

  return { dir, host, configDir, dataRoot, docker, logs: () => output, close };
}

/** The `config.json` the CLI wrote into the daemon's private DOCKER_CONFIG, or undefined. */
export async function readDockerConfig(handle: DockerdHandle): Promise<unknown> {
  try {
    return JSON.parse(await readFile(join(handle.configDir, 'config.json'), 'utf8')) as unknown;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
