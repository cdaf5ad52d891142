/**
 * @module test/support/distribution
 * Starts a real CNCF distribution registry (Debian's docker-registry) on 127.0.0.1 as an upstream or reference.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import bcrypt from 'bcryptjs';
import { logMarkerPrefix } from './access-log.js';
import { withDeadline } from './run.js';

export interface DistributionHandle {
  /** http://127.0.0.1:<port>, no trailing slash */
  url: string;
  /** 127.0.0.1:<port>, what skopeo wants */
  host: string;
  /** The storage root (filesystem driver rootdirectory). */
  dataDir: string;
  /** Everything the registry printed so far; the access log lets a test count upstream requests. */
  logs(): string;
  /**
   * The log once every request answered before the call is in it. distribution writes an access
   * line after the response, so a count read right after wharf answered can miss a late line (and
   * a zero-count check then passes for the wrong reason): this sends a marker request of its own
   * and waits for the marker's line. Count with access-log's helpers, which skip the markers.
   */
  settledLogs(): Promise<string>;
  close(): Promise<void>;
}

export interface StartDistributionOptions {
  /** Top-level config sections merged over the defaults (e.g. `auth`, `proxy`). */
  config?: Record<string, unknown>;
  /** Put the registry behind htpasswd (Basic) auth with this one user. */
  htpasswd?: { user: string; password: string };
  readyTimeoutMs?: number;
}

const binary = 'docker-registry';

async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  return undefined;
}

/** A port that was free a moment ago: listen on 0, read the port, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    }),
    5_000,
    'free-port probe listening',
  );
  const address = server.address();
  await withDeadline(new Promise<void>((resolve) => server.close(() => resolve())), 5_000, 'free-port probe closing');
  if (address === null || typeof address === 'string') throw new Error('free-port probe: no TCP address');
  return address.port;
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts `docker-registry serve` with filesystem storage in a fresh temp dir and delete enabled,
 * and resolves once `GET /v2/` answers. Fails loudly when the binary is missing: a test that needs
 * a real upstream must not pass by skipping.
 */
export async function startDistribution(options: StartDistributionOptions = {}): Promise<DistributionHandle> {
  const executable = await findOnPath(binary);
  if (executable === undefined) {
    throw new Error(
      `startDistribution: "${binary}" not found on PATH. Install CNCF distribution: ` +
        'apt-get install -y --no-upgrade docker-registry',
    );
  }
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
  const workDir = await mkdtemp(join(tmpdir(), 'wharf-distribution-'));
  const dataDir = join(workDir, 'data');
  await mkdir(dataDir);

  // Another process can take the probed port before the registry binds it; a few fresh ports cover that race.
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startOnce(executable, workDir, dataDir, options, readyTimeoutMs);
    } catch (error) {
      lastError = error;
      if (!(error instanceof EarlyExitError)) break;
    }
  }
  await rm(workDir, { recursive: true, force: true });
  throw lastError;
}

/** Thrown when the registry could not take its port (it exited, or another server answers there): retried. */
class EarlyExitError extends Error {}

const instanceHeader = 'X-Wharf-Test-Instance';

/** distribution's htpasswd auth section, with its file (bcrypt, as distribution requires) written to workDir. */
async function htpasswdAuth(
  workDir: string,
  user: StartDistributionOptions['htpasswd'],
): Promise<Record<string, unknown>> {
  if (user === undefined) return {};
  const path = join(workDir, 'htpasswd');
  await writeFile(path, `${user.user}:${bcrypt.hashSync(user.password, 4)}\n`);
  return { auth: { htpasswd: { realm: 'wharf-test', path } } };
}

async function startOnce(
  executable: string,
  workDir: string,
  dataDir: string,
  options: StartDistributionOptions,
  readyTimeoutMs: number,
): Promise<DistributionHandle> {
  const port = await freePort();
  const instance = randomUUID();
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const config = {
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: dataDir }, delete: { enabled: true } },
    // Every answer carries this run's marker: readiness proves it is this process answering on the
    // port, not whatever took the port between the free-port probe and the registry's bind.
    http: { addr: host, secret: 'test-only', headers: { [instanceHeader]: [instance] } },
    ...(await htpasswdAuth(workDir, options.htpasswd)),
    ...options.config,
  };
  const configPath = join(workDir, 'config.yml');
  await writeFile(configPath, stringify(config));

  const child = spawn(executable, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    try {
      await withDeadline(waitForExit(child), 10_000, `distribution on ${host} exiting after SIGTERM`);
    } catch {
      child.kill('SIGKILL');
      await withDeadline(waitForExit(child), 5_000, `distribution on ${host} exiting after SIGKILL`);
    }
  };

  const deadline = Date.now() + readyTimeoutMs;
  let lastProblem = 'no answer yet';
  for (;;) {
    if (spawnError !== undefined) throw new Error(`startDistribution: spawn failed: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new EarlyExitError(
        `startDistribution: docker-registry exited (${child.exitCode ?? child.signalCode}) before answering on ${host}:\n${output}`,
      );
    }
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      // 401 counts as up: a config with `auth` answers /v2/ with a challenge.
      const ours = response.headers.get(instanceHeader) === instance;
      if (ours && (response.status === 200 || response.status === 401)) break;
      lastProblem = ours ? `GET /v2/ answered ${response.status}` : `another server answers on ${host}`;
      if (!ours) {
        // Someone else holds the port: ours cannot bind it. Stop it and try a fresh port.
        await stop();
        throw new EarlyExitError(`startDistribution: ${lastProblem} (no ${instanceHeader}: ${instance})`);
      }
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `startDistribution: GET ${url}/v2/ did not answer within ${readyTimeoutMs} ms (${lastProblem}):\n${output}`,
      );
    }
    await sleep(50);
  }

  return {
    url,
    host,
    dataDir,
    logs: () => output,
    async settledLogs() {
      const marker = `${logMarkerPrefix}manifests/${randomUUID()}`;
      const response = await fetch(`${url}${marker}`, { signal: AbortSignal.timeout(10_000) });
      await response.arrayBuffer();
      const deadline = Date.now() + 10_000;
      while (!output.includes(` ${marker} `)) {
        if (Date.now() > deadline) throw new Error(`distribution on ${host}: access log line for ${marker} never came`);
        await sleep(20);
      }
      return output;
    },
    async close() {
      await stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
