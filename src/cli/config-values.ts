/**
 * @module cli/config-values
 * Parsers for the values in wharf's configuration: addresses, durations and
 * the upstream registries. Each refusal names the key the value came from.
 */
import { defaultPrefetch } from '../proxy/prefetch.js';

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config: ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface Sourced {
  value: string;
  from: string;
}

/**
 * "host:port", ":port" or "port" (all interfaces), "[v6]:port". The port alone is tried first: one
 * pattern for every form once read "5000" as host "500", port "0".
 */
export function parseListen({ value, from }: Sourced): { host: string; port: number } {
  const text = value.trim();
  const match = /^(\d+)$/.exec(text) ?? /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]*):(\d+)$/.exec(text);
  const host = match === null || match.length === 2 ? '' : (match[1] ?? '');
  const port = Number(match?.[match.length - 1]);
  if (match === null || !/^\d{1,5}$/.test(match[match.length - 1] ?? '') || port > 65535) {
    throw new ConfigError(from, `expected host:port, :port or port, got ${JSON.stringify(value)}`);
  }
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "30s", "10m", "24h", "7d", or a bare number of seconds. */
export function parseDuration({ value, from }: Sourced): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (match === null)
    throw new ConfigError(from, `expected a duration like 30s, 10m or 24h, got ${JSON.stringify(value)}`);
  return Math.round(Number(match[1]) * (units[match[2] ?? 's'] ?? 1000));
}

/** A whole number of at least 1 (a cap: no cap at all is not offered). */
export function parseCount({ value, from }: Sourced): number {
  const trimmed = value.trim();
  if (!/^\d{1,9}$/.test(trimmed) || Number(trimmed) < 1) {
    throw new ConfigError(from, `expected a whole number of at least 1, got ${JSON.stringify(value)}`);
  }
  return Number(trimmed);
}

/** A duration that must not be zero (a zero timeout would mean none). */
export function parseTimeout(sourced: Sourced): number {
  const ms = parseDuration(sourced);
  if (ms <= 0) throw new ConfigError(sourced.from, 'must be longer than 0');
  return ms;
}

export interface UpstreamSettings {
  host: string;
  url: string;
  username?: string;
  password?: string;
  token?: string;
  /** Look up credentials in ~/.docker/config.json too (opt-in: that file holds every registry's secrets). */
  dockerConfig: boolean;
  /** Serve this upstream's content to anonymous clients even though wharf fetches it with credentials. */
  public: boolean;
  tagTtlMs: number;
  notFoundTtlMs: number;
  /** Fill an image manifest's config and layers as soon as it is fetched (default true: proxy/prefetch.ts). */
  prefetch: boolean;
  /** Per-phase upstream timeouts; unset phases use the upstream layer's defaults (5 s, 30 s, 30 s). */
  timeouts?: { connectMs?: number; headersMs?: number; bodyIdleMs?: number };
  /**
   * The upstream is itself a mirror (another wharf, a tier above): it is sent the original names
   * with `?ns=<host>`, as containerd does, so one central serves several hosts at one URL (ADR 0013).
   */
  mirror?: boolean;
}

/** The registries wharf mirrors out of the box (all reached over HTTPS). */
export const defaultUpstreamUrls: Record<string, string> = {
  'docker.io': 'https://registry-1.docker.io',
  'ghcr.io': 'https://ghcr.io',
  'quay.io': 'https://quay.io',
  'registry.k8s.io': 'https://registry.k8s.io',
  'gcr.io': 'https://gcr.io',
};

/** A registry host as image references name it: dot-separated DNS labels, optional port. */
export const registryHostPattern =
  /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/;

function checkHost(host: string, from: string): string {
  const lower = host.trim().toLowerCase();
  if (!registryHostPattern.test(lower)) throw new ConfigError(from, `invalid registry host ${JSON.stringify(host)}`);
  return lower;
}

function checkUrl(url: string, from: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(from, `invalid URL ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(from, `URL must be http or https, got ${JSON.stringify(url)}`);
  }
  return url.replace(/\/+$/, '');
}

/** "host=url[,host=url…]" as in --upstream and WHARF_UPSTREAMS. */
function parsePairs(values: string[], from: string): [string, string][] {
  return values
    .flatMap((value) => value.split(','))
    .filter((pair) => pair.trim() !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new ConfigError(from, `expected host=url, got ${JSON.stringify(pair)}`);
      return [checkHost(pair.slice(0, eq), from), checkUrl(pair.slice(eq + 1).trim(), from)];
    });
}

/** A duration given as a YAML string ("5m") or a number of seconds. */
function durationValue(entry: Record<string, unknown>, key: string, from: string): number {
  const value = entry[key];
  if (typeof value !== 'string' && typeof value !== 'number')
    throw new ConfigError(`${from}.${key}`, 'expected a duration');
  return parseDuration({ value: String(value), from: `${from}.${key}` });
}

function optionalString(entry: Record<string, unknown>, key: string, from: string): string | undefined {
  const value = entry[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ConfigError(`${from}.${key}`, 'expected a string');
  return value;
}

const upstreamKeys = new Set([
  'url',
  'username',
  'password',
  'token',
  'dockerConfig',
  'public',
  'tagTtl',
  'notFoundTtl',
  'prefetch',
  'mirror',
  'connectTimeout',
  'responseTimeout',
  'idleTimeout',
]);

/**
 * Built-in upstreams, then the file's `upstreams:` map (an entry set to null
 * removes a built-in one), then WHARF_UPSTREAMS, then --upstream flags.
 */
export function parseUpstreams(sources: {
  file: unknown;
  env: string | undefined;
  flags: string[];
  /** WHARF_MIRROR_UPSTREAMS and --mirror-upstream: the same pairs, marked `mirror`. */
  mirrorEnv?: string | undefined;
  mirrorFlags?: string[];
  defaults: { tagTtlMs: number; notFoundTtlMs: number };
}): UpstreamSettings[] {
  const byHost = new Map<string, UpstreamSettings>();
  const base = (host: string, url: string): UpstreamSettings => ({
    host,
    url,
    dockerConfig: false,
    public: false,
    tagTtlMs: sources.defaults.tagTtlMs,
    notFoundTtlMs: sources.defaults.notFoundTtlMs,
    prefetch: defaultPrefetch,
  });
  for (const [host, url] of Object.entries(defaultUpstreamUrls)) byHost.set(host, base(host, url));

  if (sources.file !== undefined && sources.file !== null) {
    if (typeof sources.file !== 'object' || Array.isArray(sources.file)) {
      throw new ConfigError('upstreams', 'expected a map of registry host to settings');
    }
    for (const [rawHost, rawEntry] of Object.entries(sources.file)) {
      const from = `upstreams.${rawHost}`;
      const host = checkHost(rawHost, from);
      if (rawEntry === null) {
        byHost.delete(host);
        continue;
      }
      if (typeof rawEntry !== 'object' || Array.isArray(rawEntry)) throw new ConfigError(from, 'expected a map');
      const entry = rawEntry as Record<string, unknown>;
      for (const key of Object.keys(entry)) {
        if (!upstreamKeys.has(key)) throw new ConfigError(`${from}.${key}`, 'unknown option');
      }
      const url = optionalString(entry, 'url', from) ?? byHost.get(host)?.url;
      if (url === undefined) throw new ConfigError(`${from}.url`, 'is required for a registry wharf does not know');
      const settings = base(host, checkUrl(url, `${from}.url`));
      const username = optionalString(entry, 'username', from);
      const password = optionalString(entry, 'password', from);
      const token = optionalString(entry, 'token', from);
      if (username !== undefined) settings.username = username;
      if (password !== undefined) settings.password = password;
      if (token !== undefined) settings.token = token;
      for (const key of ['dockerConfig', 'public', 'prefetch', 'mirror'] as const) {
        if (entry[key] === undefined) continue;
        if (typeof entry[key] !== 'boolean') throw new ConfigError(`${from}.${key}`, 'expected true or false');
        settings[key] = entry[key];
      }
      for (const [key, field] of [
        ['tagTtl', 'tagTtlMs'],
        ['notFoundTtl', 'notFoundTtlMs'],
      ] as const) {
        if (entry[key] !== undefined) settings[field] = durationValue(entry, key, from);
      }
      for (const [key, field] of [
        ['connectTimeout', 'connectMs'],
        ['responseTimeout', 'headersMs'],
        ['idleTimeout', 'bodyIdleMs'],
      ] as const) {
        if (entry[key] === undefined) continue;
        settings.timeouts = { ...settings.timeouts, [field]: durationValue(entry, key, from) };
      }
      byHost.set(host, settings);
    }
  }
  const overrides = [
    ...parsePairs(sources.env === undefined ? [] : [sources.env], 'WHARF_UPSTREAMS'),
    ...parsePairs(sources.flags, '--upstream'),
  ];
  for (const [host, url] of overrides) byHost.set(host, { ...(byHost.get(host) ?? base(host, url)), url });
  const mirrors = [
    ...parsePairs(sources.mirrorEnv === undefined ? [] : [sources.mirrorEnv], 'WHARF_MIRROR_UPSTREAMS'),
    ...parsePairs(sources.mirrorFlags ?? [], '--mirror-upstream'),
  ];
  for (const [host, url] of mirrors) {
    byHost.set(host, { ...(byHost.get(host) ?? base(host, url)), url, mirror: true });
  }
  for (const settings of byHost.values()) checkMirrorUrl(settings);
  return [...byHost.values()];
}

/**
 * A mirror is sent the original names with ?ns=: a path in its URL would be a second, conflicting
 * way of naming the upstream (the receiving wharf routes by ns= and would store the path as part
 * of the name). One or the other.
 */
function checkMirrorUrl(settings: UpstreamSettings): void {
  if (settings.mirror !== true) return;
  const path = new URL(settings.url).pathname.replace(/^\/+|\/+$/g, '');
  if (path !== '') {
    throw new ConfigError(
      `upstreams.${settings.host}`,
      `a mirror upstream is sent ?ns=${settings.host} and takes a URL without a path, got ${JSON.stringify(settings.url)} (drop mirror, or the path)`,
    );
  }
}

/**
 * Whether an upstream's content is private: wharf may fetch it with credentials
 * (configured ones, or ones it may find in ~/.docker/config.json), so it is
 * served only to signed-in clients with pull rights, unless `public: true` says
 * the operator knows it is public content (Docker Hub with an account for the rate limit).
 */
export function isPrivateUpstream(settings: UpstreamSettings): boolean {
  if (settings.public) return false;
  return (
    settings.dockerConfig ||
    (settings.username !== undefined && settings.password !== undefined) ||
    (settings.token !== undefined && settings.token !== '')
  );
}
