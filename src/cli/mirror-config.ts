/**
 * @module cli/mirror-config
 * The client-side configuration that makes docker, containerd or podman pull through wharf, as
 * files to write plus notes for the person writing them. Pure: no process, environment or file access.
 *
 * How each client reaches wharf, and so how wharf learns the upstream:
 * - docker `registry-mirrors`: Docker Hub only; requests carry no upstream (`/v2/library/ubuntu/…`).
 * - containerd `hosts.toml`: any registry; requests carry `?ns=<registry host>`.
 * - podman / CRI-O `registries.conf` mirror: any registry; the mirror location's path prefix names
 *   the upstream, so wharf sees `/v2/<registry host>/<repository>/…`.
 */
import { registryHostPattern } from './config-values.js';

export const mirrorClients = ['docker', 'containerd', 'podman'] as const;
export type MirrorClient = (typeof mirrorClients)[number];

export interface MirrorConfigOptions {
  /** wharf's base URL as clients reach it, e.g. `http://mirror.local:5000`. */
  url: string;
  /** Registry hosts to send through wharf, e.g. `['docker.io', 'ghcr.io']`. */
  registries: string[];
}

export interface MirrorConfigFile {
  /** Where the file goes on the client machine (absolute). */
  path: string;
  content: string;
}

export interface MirrorConfig {
  files: MirrorConfigFile[];
  /** Instructions that cannot live inside the files (daemon.json has no comments), one per line. */
  notes: string[];
}

export class MirrorConfigError extends Error {
  constructor(message: string) {
    super(`mirror-config: ${message}`);
    this.name = 'MirrorConfigError';
  }
}

const dockerHub = 'docker.io';
/** What containerd and docker really talk to for `docker.io`. */
const dockerHubServer = 'https://registry-1.docker.io';

interface WharfUrl {
  /** scheme://host[:port], no trailing slash */
  origin: string;
  /** host[:port] */
  host: string;
  insecure: boolean;
}

function parseUrl(url: string): WharfUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MirrorConfigError(`url ${JSON.stringify(url)} is not a URL (expected e.g. http://mirror.local:5000)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new MirrorConfigError(`url ${JSON.stringify(url)}: the scheme must be http or https`);
  }
  // Every client appends /v2/ to the mirror's root; wharf serves the API at the root, not under a path.
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') {
    throw new MirrorConfigError(`url ${JSON.stringify(url)}: give only scheme, host and port, without a path`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new MirrorConfigError(`url ${JSON.stringify(url)}: credentials do not belong in a mirror URL`);
  }
  return { origin: parsed.origin, host: parsed.host, insecure: parsed.protocol === 'http:' };
}

function checkRegistries(registries: readonly string[]): string[] {
  if (registries.length === 0) throw new MirrorConfigError('registries: name at least one registry host');
  const seen = new Set<string>();
  for (const registry of registries) {
    // The host ends up in a file path and in TOML strings: reject anything but a plain host[:port].
    if (!registryHostPattern.test(registry)) {
      throw new MirrorConfigError(
        `registries: ${JSON.stringify(registry)} is not a lowercase registry host (e.g. docker.io, ghcr.io, registry.local:5000)`,
      );
    }
    if (seen.has(registry)) throw new MirrorConfigError(`registries: ${registry} is listed twice`);
    seen.add(registry);
  }
  return [...seen];
}

function tomlString(value: string): string {
  // The values here are checked hosts and URLs: a JSON string of them is a valid TOML basic string.
  return JSON.stringify(value);
}

function dockerConfig(url: WharfUrl, registries: string[]): MirrorConfig {
  const notes = [
    `Merge into /etc/docker/daemon.json, then restart dockerd (systemctl restart docker).`,
    `Docker's registry-mirrors only ever mirrors Docker Hub (docker.io); other registries are never sent to a mirror.`,
    `Start wharf with --default-upstream docker.io; plain names are then mirrored and read-only, so name the ones you push with --local (e.g. --local 'team/*').`,
  ];
  const others = registries.filter((registry) => registry !== dockerHub);
  for (const registry of others) {
    notes.push(
      `${registry} cannot be mirrored by docker: pull ${url.host}/${registry}/<repository>:<tag> instead, ` +
        `or use containerd's hosts.toml (docker with the containerd image store reads /etc/docker/certs.d/<host>/hosts.toml).`,
    );
  }
  const daemon: { 'registry-mirrors'?: string[]; 'insecure-registries'?: string[] } = {};
  if (registries.includes(dockerHub)) daemon['registry-mirrors'] = [url.origin];
  // An http mirror must also be listed as insecure, by host:port without a scheme.
  if (url.insecure) daemon['insecure-registries'] = [url.host];
  const files =
    Object.keys(daemon).length === 0
      ? []
      : [{ path: '/etc/docker/daemon.json', content: `${JSON.stringify(daemon, null, 2)}\n` }];
  return { files, notes };
}

function containerdConfig(url: WharfUrl, registries: string[]): MirrorConfig {
  const files = registries.map((registry) => ({
    path: `/etc/containerd/certs.d/${registry}/hosts.toml`,
    content: [
      `# Pull ${registry} through wharf at ${url.origin}; if wharf fails, containerd goes on to server.`,
      `# Requests to wharf carry ?ns=${registry}, which tells wharf the upstream of the repository.`,
      `server = ${tomlString(registry === dockerHub ? dockerHubServer : `https://${registry}`)}`,
      '',
      `[host.${tomlString(url.origin)}]`,
      '  capabilities = ["pull", "resolve"]',
      '',
    ].join('\n'),
  }));
  const notes = [
    'The CRI plugin reads these files only when config.toml sets config_path:',
    '  containerd 1.x: [plugins."io.containerd.grpc.v1.cri".registry] config_path = "/etc/containerd/certs.d"',
    '  containerd 2.x: [plugins."io.containerd.cri.v1.images".registry] config_path = "/etc/containerd/certs.d"',
    'then restart containerd. ctr reads them with: ctr image pull --hosts-dir /etc/containerd/certs.d <ref>',
    'containerd adds ?ns=<registry host> to every request it sends to wharf.',
  ];
  return { files, notes };
}

function podmanConfig(url: WharfUrl, registries: string[]): MirrorConfig {
  const lines = [
    `# Pull through wharf at ${url.origin}. The mirror location's path names the upstream registry:`,
    `# wharf serves /v2/<registry host>/<repository>/... . Podman, CRI-O, skopeo and buildah read this file.`,
  ];
  for (const registry of registries) {
    lines.push(
      '',
      '[[registry]]',
      `prefix = ${tomlString(registry)}`,
      `location = ${tomlString(registry)}`,
      '',
      '[[registry.mirror]]',
      `location = ${tomlString(`${url.host}/${registry}`)}`,
      ...(url.insecure ? ['insecure = true'] : []),
    );
  }
  lines.push('');
  const notes = [
    'A [[registry]] with the same prefix in a later file of registries.conf.d replaces this one.',
    'Mirrors are used for pulls only; push, search and login still go to the registry itself.',
  ];
  return { files: [{ path: '/etc/containers/registries.conf.d/wharf.conf', content: lines.join('\n') }], notes };
}

/**
 * The files (and notes) that make `client` pull `options.registries` through wharf at `options.url`.
 * Throws MirrorConfigError on a bad URL or registry host.
 */
export function formatMirrorConfig(client: MirrorClient, options: MirrorConfigOptions): MirrorConfig {
  const url = parseUrl(options.url);
  const registries = checkRegistries(options.registries);
  switch (client) {
    case 'docker':
      return dockerConfig(url, registries);
    case 'containerd':
      return containerdConfig(url, registries);
    case 'podman':
      return podmanConfig(url, registries);
  }
}
