/**
 * The private Docker Engine harness itself (test/support/dockerd.ts): two daemons at once do not
 * share a socket, a data root or a containerd; the CLI's logins stay in the daemon's private
 * DOCKER_CONFIG; close() leaves no process, mount or file behind, even after dockerd was killed.
 */
import { readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { isProcessRunning, readDockerConfig, startDockerd, type DockerdHandle } from './support/dockerd.js';
import { run } from './support/run.js';

function containerdPid(daemon: DockerdHandle): number {
  return Number(readFileSync(join(daemon.dir, 'exec', 'containerd', 'containerd.pid'), 'utf8').trim());
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function mountsUnder(dir: string): Promise<string[]> {
  const { stdout } = await run('findmnt', ['--raw', '--noheadings', '--output', 'TARGET'], { timeoutMs: 10_000 });
  return stdout.split('\n').filter((target) => target === dir || target.startsWith(`${dir}/`));
}

describe.sequential('private dockerd harness', () => {
  let registry: DistributionHandle;

  beforeAll(async () => {
    registry = await startDistribution();
  });

  afterAll(async () => {
    await registry?.close();
  });

  it('runs two daemons at once, each with its own socket, data root and containerd', async () => {
    const [a, b] = await Promise.all([startDockerd(), startDockerd()]);
    try {
      expect(a.host).not.toBe(b.host);
      const rootOf = async (d: DockerdHandle): Promise<string> =>
        (await d.docker(['info', '--format', '{{.DockerRootDir}}'])).stdout.trim();
      expect(await rootOf(a)).toBe(a.dataRoot);
      expect(await rootOf(b)).toBe(b.dataRoot);
      // Each started its own containerd (a shared one would write no pidfile under the exec root).
      expect(containerdPid(a)).not.toBe(containerdPid(b));
      expect(isProcessRunning(containerdPid(a)) && isProcessRunning(containerdPid(b))).toBe(true);

      const bContainerd = containerdPid(b);
      await b.close();
      expect(isProcessRunning(bContainerd)).toBe(false);
      expect(await exists(b.dir)).toBe(false);
      // Stopping one leaves the other answering.
      expect((await a.docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim()).not.toBe('');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('keeps docker login in the daemon private DOCKER_CONFIG, not in ~/.docker', async () => {
    const daemon = await startDockerd({ insecureRegistries: [registry.host] });
    const homeConfig = join(homedir(), '.docker', 'config.json');
    const homeBefore = (await exists(homeConfig)) ? readFileSync(homeConfig, 'utf8') : undefined;
    try {
      // distribution without auth answers /v2/ with 200, which docker takes as a successful login.
      await daemon.docker(['login', '--username', 'tester', '--password-stdin', registry.host], {
        input: 'not-a-secret\n',
      });
      const config = (await readDockerConfig(daemon)) as { auths?: Record<string, unknown> } | undefined;
      expect(Object.keys(config?.auths ?? {})).toContain(registry.host);
      const homeAfter = (await exists(homeConfig)) ? readFileSync(homeConfig, 'utf8') : undefined;
      expect(homeAfter).toBe(homeBefore);
    } finally {
      await daemon.close();
    }
  });

  it('cleans up after a dockerd that was killed: no containerd, no mount, no temp dir left', async () => {
    const daemon = await startDockerd();
    const pid = Number(readFileSync(join(daemon.dir, 'docker.pid'), 'utf8').trim());
    const containerd = containerdPid(daemon);
    // dockerd makes its data root a mount of its own; a SIGKILL leaves it (and containerd) behind.
    process.kill(pid, 'SIGKILL');
    expect(await mountsUnder(daemon.dir)).toEqual([daemon.dataRoot]);
    await daemon.close();
    expect(isProcessRunning(containerd)).toBe(false);
    expect(await mountsUnder(daemon.dir)).toEqual([]);
    expect(await exists(daemon.dir)).toBe(false);
  });
});
