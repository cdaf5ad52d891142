/**
 * @module test/support/containerd
 * A private containerd daemon per test (its own root, state and sockets under a fresh temp dir) and
 * `ctr image pull --hosts-dir` through a mirror, so tests see exactly the requests a real containerd sends.
 *
 * What containerd sends to a mirror: for `registry.example.test/smoke/app:v1` with a hosts.toml whose
 * `[host."http://127.0.0.1:PORT"]` is that mirror, the requests are
 * `HEAD /v2/smoke/app/manifests/v1?ns=registry.example.test`, then GETs of manifests and blobs by
 * digest, each with `?ns=registry.example.test` (the registry host, port included when it has one;
 * `docker.io` for Docker Hub, with no `library/` added by ctr). A 404 from the mirror makes
 * containerd go on to the next host and finally to `server`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, withDeadline, type RunResult } from './run.js';

/** Every ctr call the helpers make goes into this namespace (a namespace is a label, not isolation). */
export const containerdNamespace = 'wharf-test';

/**
 * Nothing listens on 127.0.0.1:1: the port is privileged and below the ephemeral range, so no test
 * server bound to port 0 can ever get it. A hosts.toml `server` (or a registries.conf `location`)
 * pointing here makes a mirror failure fail the pull instead of reaching the network.
 */
export const deadServerHost = '127.0.0.1:1';

export interface PullOptions {
  /** The `--hosts-dir` that holds `<registry host>/hosts.toml`. */
  hostsDir: string;
  /** e.g. `linux/amd64`; without it (and without allPlatforms) ctr pulls the host's platform. */
  platform?: string;
  /** `--all-platforms`: fetch (and unpack) every platform of an index. */
  allPlatforms?: boolean;
  /** Kills ctr after this long; default 120 s. */
  timeoutMs?: number;
}

export interface ContainerdImage {
  ref: string;
  /** The media type of the target (an index or a manifest). */
  mediaType: string;
  /** The digest of what the tag resolved to: the index for a multi-platform image. */
  digest: string;
  platforms: string[];
}

export interface ContainerdContent {
  digest: string;
  /** `key=value` labels, e.g. `containerd.io/distribution.source.registry.example.test=smoke/app`. */
  labels: string[];
}

export interface ContainerdHandle {
  /** The grpc socket, for `ctr --address`. */
  address: string;
  /** The temp dir holding config, root, state and sockets; removed by close(). */
  dir: string;
  /** Runs `ctr --address <sock> --namespace wharf-test image pull --hosts-dir … <ref>`. */
  pull(ref: string, options: PullOptions): Promise<RunResult>;
  /** `ctr content ls`: every blob in the content store (manifests, configs, layers). */
  contentList(): Promise<ContainerdContent[]>;
  /** `ctr image ls`. */
  imageList(): Promise<ContainerdImage[]>;
  /** Runs any other `ctr` subcommand against this daemon and namespace, e.g. `['content', 'get', digest]`. */
  ctr(args: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** Everything containerd printed so far. */
  logs(): string;
  close(): Promise<void>;
}

export interface StartContainerdOptions {
  readyTimeoutMs?: number;
}

const ctrTimeoutMs = 30_000;
const pullTimeoutMs = 120_000;
// sockaddr_un.sun_path is 108 bytes on Linux; the longest socket path here is <dir>/containerd.sock.ttrpc.
const maxSocketPath = 107;

function tomlString(value: string): string {
  // A JSON string of printable text is a valid TOML basic string (same quotes and escapes).
  return JSON.stringify(value);
}

function configToml(dir: string): string {
  return [
    'version = 2',
    `root = ${tomlString(join(dir, 'root'))}`,
    `state = ${tomlString(join(dir, 'state'))}`,
    // The CRI plugin would want a CNI setup and /etc paths; pulls through ctr do not need it.
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '',
    '[grpc]',
    `  address = ${tomlString(join(dir, 'containerd.sock'))}`,
    '',
    '[ttrpc]',
    `  address = ${tomlString(join(dir, 'containerd.sock.ttrpc'))}`,
    '',
    '[debug]',
    `  address = ${tomlString(join(dir, 'debug.sock'))}`,
    '',
    // No metrics listener: it would be a TCP port shared by every daemon on the machine.
    '[metrics]',
    '  address = ""',
    '',
  ].join('\n');
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Mount points at or under `dir`, deepest first so that nested mounts come off before their parents. */
async function mountsUnder(dir: string): Promise<string[]> {
  const { stdout } = await run('findmnt', ['--raw', '--noheadings', '--output', 'TARGET'], { timeoutMs: 10_000 });
  return (
    stdout
      .split('\n')
      // findmnt --raw escapes blanks and backslashes as \xNN; the temp paths here have none.
      .filter((target) => target === dir || target.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length)
  );
}

/**
 * Unmounts anything left under `dir`. A pull unpacks with overlayfs through short-lived mounts under
 * `<root>/tmpmounts`; a daemon killed mid-unpack can leave one behind, and rm -rf cannot cross it.
 */
export async function unmountAll(dir: string): Promise<void> {
  for (const target of await mountsUnder(dir)) {
    try {
      await run('umount', [target], { timeoutMs: 10_000 });
    } catch {
      // Busy: detach it lazily so the tree can still be removed.
      await run('umount', ['--lazy', target], { timeoutMs: 10_000 });
    }
  }
}

/** Splits `ctr … ls` output (a tabwriter table with a header line) into rows of whitespace-separated fields. */
function tableRows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => line.split(/\s+/));
}

function parseImageList(stdout: string): ContainerdImage[] {
  // REF TYPE DIGEST SIZE PLATFORMS LABELS, where SIZE is two fields ("1.2 KiB") and LABELS is "-" or k=v,k=v.
  return tableRows(stdout).map((fields) => {
    const [ref, mediaType, digest] = fields;
    const platforms = fields[fields.length - 2];
    if (ref === undefined || mediaType === undefined || digest === undefined || platforms === undefined) {
      throw new Error(`ctr image ls: cannot parse row: ${fields.join(' ')}`);
    }
    return { ref, mediaType, digest, platforms: platforms === '-' ? [] : platforms.split(',') };
  });
}

function parseContentList(stdout: string): ContainerdContent[] {
  // DIGEST SIZE AGE LABELS, where AGE is several words ("2 seconds ago") and LABELS is the last field.
  return tableRows(stdout).map((fields) => {
    const digest = fields[0];
    const labels = fields[fields.length - 1];
    if (digest === undefined || labels === undefined) {
      throw new Error(`ctr content ls: cannot parse row: ${fields.join(' ')}`);
    }
    return { digest, labels: labels === '-' ? [] : labels.split(',') };
  });
}

/**
 * Starts `containerd --config <tmp>/containerd.toml` and resolves once `ctr version` answers on its
 * socket. Needs root (containerd mounts overlayfs to unpack). Fails loudly when containerd is
 * missing: a client test must not pass by skipping.
 */
export async function startContainerd(options: StartContainerdOptions = {}): Promise<ContainerdHandle> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
  const dir = await mkdtemp(join(tmpdir(), 'wharf-containerd-'));
  const address = join(dir, 'containerd.sock');
  if (`${address}.ttrpc`.length > maxSocketPath) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`startContainerd: socket path ${address}.ttrpc is too long for a unix socket; set TMPDIR=/tmp`);
  }
  const configPath = join(dir, 'containerd.toml');
  await writeFile(configPath, configToml(dir));

  const child = spawn('containerd', ['--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  // If the test process dies without close(), a daemon left running would hold its sockets and
  // mounts until someone notices; SIGKILL on exit at least ends the process.
  const killOnExit = (): void => {
    if (!hasExited(child)) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const ctr = (args: readonly string[], timeoutMs = ctrTimeoutMs): Promise<RunResult> =>
    run('ctr', ['--address', address, '--namespace', containerdNamespace, ...args], { timeoutMs });

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', killOnExit);
    // No pid: the spawn itself failed and there is no process to stop.
    if (child.pid !== undefined && !hasExited(child)) {
      child.kill('SIGTERM');
      try {
        await withDeadline(waitForExit(child), 10_000, `containerd in ${dir} exiting after SIGTERM`);
      } catch {
        child.kill('SIGKILL');
        await withDeadline(waitForExit(child), 5_000, `containerd in ${dir} exiting after SIGKILL`);
      }
    }
    await unmountAll(dir);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + readyTimeoutMs;
  let lastProblem = 'no answer yet';
  for (;;) {
    if (spawnError !== undefined) {
      await close();
      const hint = (spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? ' (apt-get install -y containerd)' : '';
      throw new Error(`startContainerd: spawn failed: ${spawnError.message}${hint}`);
    }
    if (hasExited(child)) {
      await close();
      throw new Error(`startContainerd: containerd exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    try {
      // Not the `ctr` helper: `version` needs no namespace, and a short timeout keeps the loop moving.
      await run('ctr', ['--address', address, 'version'], { timeoutMs: 2_000 });
      break;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(
        `startContainerd: ctr version did not answer within ${readyTimeoutMs} ms (${lastProblem}):\n${output}`,
      );
    }
    await sleep(100);
  }

  return {
    address,
    dir,
    pull(ref, pullOptions) {
      const platformArgs =
        pullOptions.allPlatforms === true
          ? ['--all-platforms']
          : pullOptions.platform === undefined
            ? []
            : ['--platform', pullOptions.platform];
      return ctr(
        ['image', 'pull', '--hosts-dir', pullOptions.hostsDir, ...platformArgs, ref],
        pullOptions.timeoutMs ?? pullTimeoutMs,
      );
    },
    async contentList() {
      return parseContentList((await ctr(['content', 'ls'])).stdout);
    },
    async imageList() {
      return parseImageList((await ctr(['image', 'ls'])).stdout);
    },
    ctr,
    logs: () => output,
    close,
  };
}

export interface HostsTomlOptions {
  /** The `server` (last resort after the mirror); default a dead loopback port so nothing leaves the machine. */
  deadServer?: string;
}

/**
 * Writes `<hostsDir>/<registryHost>/hosts.toml` that sends `registryHost`'s pulls to `mirrorUrl`
 * (e.g. `http://127.0.0.1:PORT`; plain http needs no skip_verify, the scheme alone says so).
 * A registry host with a port works as the directory name (`host:port`); containerd also looks for
 * `host_port_`. Returns the file's path.
 */
export async function writeHostsToml(
  hostsDir: string,
  registryHost: string,
  mirrorUrl: string,
  options: HostsTomlOptions = {},
): Promise<string> {
  const server = options.deadServer ?? `http://${deadServerHost}`;
  const content = [
    `# Pulls of ${registryHost} go to the mirror first; containerd adds ?ns=${registryHost} to each request.`,
    `server = ${tomlString(server)}`,
    '',
    `[host.${tomlString(mirrorUrl)}]`,
    '  capabilities = ["pull", "resolve"]',
    '',
  ].join('\n');
  const dir = join(hostsDir, registryHost);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'hosts.toml');
  await writeFile(path, content);
  return path;
}
