/**
 * @module test/support/podman
 * `podman pull` through a registries.conf mirror, with every config file, store and runtime dir in
 * a temp dir, so a test sees the requests podman (containers/image) really sends and leaves nothing
 * in /var/lib/containers.
 *
 * What podman sends to a mirror: no `ns=` parameter. The mirror location replaces the matched
 * `prefix`, so with prefix `registry.example.test` and mirror `127.0.0.1:PORT/registry.example.test`
 * a pull of `registry.example.test/smoke/app:v1` asks for `/v2/registry.example.test/smoke/app/…`;
 * with mirror `127.0.0.1:PORT` it asks for `/v2/smoke/app/…`. When the mirror fails, podman goes on
 * to `location`, which these helpers point at a dead port.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deadServerHost } from './containerd.js';
import { run, type RunResult } from './run.js';

export interface PodmanDirOptions {
  /** Holds the config files, graphroot, runroot and tmp dir; the caller creates and owns it. */
  dir: string;
  /** Kills podman after this long; default 120 s for a pull, 30 s otherwise. */
  timeoutMs?: number;
  /** More environment, e.g. REGISTRY_AUTH_FILE and DOCKER_CONFIG to keep credentials in the temp dir. */
  env?: Record<string, string>;
  /** Written to podman's stdin (`login --password-stdin`). */
  input?: string;
}

export interface PodmanMirrorOptions {
  /** `[[registry]] prefix`, e.g. `registry.example.test`. */
  registryPrefix: string;
  /** `[[registry.mirror]] location`, e.g. `127.0.0.1:PORT` or `127.0.0.1:PORT/registry.example.test`. */
  mirrorLocation: string;
}

/** Either a generated one-mirror registries.conf, or the caller's whole registries.conf text. */
export type PodmanPullOptions = PodmanDirOptions & (PodmanMirrorOptions | { registriesConf: string });

export interface PodmanPullResult {
  /** The image id podman printed (the config digest's hex). */
  imageId: string;
  stdout: string;
  stderr: string;
}

export interface PodmanImage {
  id: string;
  /** `.Digest`: the digest of the manifest the tag resolved to (the index for a multi-platform image). */
  digest: string;
  repoDigests: string[];
}

const pullTimeoutMs = 120_000;
const commandTimeoutMs = 30_000;

function tomlString(value: string): string {
  // A JSON string of printable text is a valid TOML basic string (same quotes and escapes).
  return JSON.stringify(value);
}

/** The three variables that point podman at the temp dir's configs instead of /etc/containers. */
export function podmanEnv(dir: string): Record<string, string> {
  return {
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    CONTAINERS_CONF: join(dir, 'containers.conf'),
  };
}

/**
 * A registries.conf with one mirrored registry. Search registries and short names are off, so only
 * fully qualified references resolve and nothing falls through to docker.io. Both entries are
 * `insecure`: the test registries speak plain http.
 */
export function mirrorRegistriesConf(options: PodmanMirrorOptions): string {
  return [
    'unqualified-search-registries = []',
    'short-name-mode = "disabled"',
    '',
    '[[registry]]',
    `prefix = ${tomlString(options.registryPrefix)}`,
    `location = ${tomlString(deadServerHost)}`,
    'insecure = true',
    '',
    '[[registry.mirror]]',
    `location = ${tomlString(options.mirrorLocation)}`,
    'insecure = true',
    '',
  ].join('\n');
}

/**
 * Writes registries.conf, storage.conf and containers.conf into `dir` and returns the environment
 * that selects them. Note that podman still reads the drop-ins in /etc/containers/registries.conf.d
 * (Debian ships short-name aliases there): harmless for fully qualified references.
 */
export async function writePodmanConfig(
  dir: string,
  registries: PodmanMirrorOptions | { registriesConf: string },
): Promise<Record<string, string>> {
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await mkdir(join(dir, 'networks'), { recursive: true });
  const registriesConf = 'registriesConf' in registries ? registries.registriesConf : mirrorRegistriesConf(registries);
  const storageConf = [
    '[storage]',
    // vfs copies layers into plain directories: no overlay mounts to clean up, no kernel support needed.
    'driver = "vfs"',
    `runroot = ${tomlString(join(dir, 'runroot'))}`,
    `graphroot = ${tomlString(join(dir, 'graphroot'))}`,
    '',
  ].join('\n');
  const containersConf = [
    '[engine]',
    // No systemd here: cgroupfs, and events to a file instead of journald.
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = ${tomlString(join(dir, 'events.log'))}`,
    `tmp_dir = ${tomlString(join(dir, 'tmp'))}`,
    // Layers are downloaded to a temp file first, by default in /var/tmp.
    `image_copy_tmp_dir = ${tomlString(join(dir, 'tmp'))}`,
    '',
    '[network]',
    // A pull needs no network, but podman sets its backend up anyway: rootful netavark (the default
    // here) keeps state in /run/containers/networks, while CNI keeps everything in network_config_dir.
    'network_backend = "cni"',
    `network_config_dir = ${tomlString(join(dir, 'networks'))}`,
    '',
  ].join('\n');
  const env = podmanEnv(dir);
  await writeFile(env['CONTAINERS_REGISTRIES_CONF'] ?? '', registriesConf);
  await writeFile(env['CONTAINERS_STORAGE_CONF'] ?? '', storageConf);
  await writeFile(env['CONTAINERS_CONF'] ?? '', containersConf);
  return env;
}

/** Runs `podman <args>` with the temp dir's configs. */
export function podman(args: readonly string[], options: PodmanDirOptions): Promise<RunResult> {
  return run('podman', args, {
    timeoutMs: options.timeoutMs ?? commandTimeoutMs,
    env: { ...options.env, ...podmanEnv(options.dir) },
    input: options.input,
  });
}

/** Writes the configs into `options.dir`, then `podman pull <ref>`; stdout is the image id. */
export async function podmanPull(ref: string, options: PodmanPullOptions): Promise<PodmanPullResult> {
  await writePodmanConfig(options.dir, options);
  const result = await podman(['pull', ref], { dir: options.dir, timeoutMs: options.timeoutMs ?? pullTimeoutMs });
  return { imageId: result.stdout.trim(), stdout: result.stdout, stderr: result.stderr };
}

/** `podman image inspect` of a pulled image (by reference or id) in the temp dir's store. */
export async function podmanImageInspect(ref: string, options: PodmanDirOptions): Promise<PodmanImage> {
  const { stdout } = await podman(['image', 'inspect', ref], options);
  const parsed = JSON.parse(stdout) as Array<{ Id?: string; Digest?: string; RepoDigests?: string[] }>;
  const image = parsed[0];
  if (image?.Id === undefined || image.Digest === undefined) {
    throw new Error(`podman image inspect ${ref}: no Id or Digest in ${stdout}`);
  }
  return { id: image.Id, digest: image.Digest, repoDigests: image.RepoDigests ?? [] };
}

/** The digest of the manifest `ref` was pulled by (`{{.Digest}}`). */
export async function podmanImageDigest(ref: string, options: PodmanDirOptions): Promise<string> {
  const { stdout } = await podman(['image', 'inspect', '--format', '{{.Digest}}', ref], options);
  return stdout.trim();
}

/**
 * Removes the temp dir's store and configs. vfs layers are plain files that root can delete; when
 * the tests do not run as root, `podman unshare` would be needed for files owned by mapped ids.
 */
export async function podmanCleanup(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
