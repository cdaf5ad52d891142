/**
 * @module cli/config
 * wharf's settings from three places, later ones winning: the YAML file
 * (--config / WHARF_CONFIG), environment variables (WHARF_*), then flags.
 * A bad value is one clear line naming the key it came from.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { defaultMaxConcurrentFills } from '../proxy/fill-registry.js';
import { parseAuth, parseLocalPatterns, type AuthSettings } from './auth-config.js';
import {
  parseCount,
  parseDuration,
  parseListen,
  parseTimeout,
  parseUpstreams,
  ConfigError,
  type Sourced,
  type UpstreamSettings,
} from './config-values.js';
import { logFormats, type LogFormat } from './make-logger.js';
import { defaultMaxConnections } from './open-file-limit.js';
import { parseLifecycle, type LifecycleConfig } from './lifecycle-config.js';

export { ConfigError, parseDuration, parseListen, type UpstreamSettings } from './config-values.js';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface Config {
  listen: { host: string; port: number };
  dataDir: string;
  logLevel: LogLevel;
  /** json, pretty, or auto: pretty when standard output is a terminal (log.format). */
  logFormat: LogFormat;
  uploadMaxAgeMs: number;
  shutdownGraceMs: number;
  upstreams: UpstreamSettings[];
  defaultUpstream: string | undefined;
  offline: boolean;
  /** Names that stay local (never sent upstream) when a default upstream is set. */
  local: string[];
  auth: AuthSettings;
  /** Upstream blob downloads at once; more wait in a queue. */
  maxConcurrentFills: number;
  /** Caps on open upload sessions, and how soon one that never got a byte is dropped. */
  uploads: { maxSessions: number; maxSessionsPerClient: number; emptyMaxAgeMs: number };
  /** What one client connection may hold (see connection-guard.ts). */
  limits: { headerTimeoutMs: number; idleTimeoutMs: number; maxConnections: number };
  /** PEM files: set, wharf serves HTTPS only. */
  tls: { cert: string; key: string } | undefined;
  /** One JSON line per request at info (log.access). */
  accessLog: boolean;
  /** Anyone may read /metrics (metrics.public); else loopback clients and admins, when users are configured. */
  metricsPublic: boolean;
  /** Check blob bytes against their digest as serve reads them (store.verifyReads; ADR 0009). */
  verifyReads: boolean;
  /** Pushed manifests may name blobs (and index children) the registry does not hold (issue 10). */
  sparseManifests: boolean;
  /** store.maxSize, store.lowWaterMark, store.pin, store.gc.* (lifecycle-config.ts). */
  lifecycle: LifecycleConfig;
}

/** Every scalar option by its dotted YAML key, with the environment variable and flag that set it. */
const options = {
  listen: { env: 'WHARF_LISTEN', flag: 'listen', default: ':5000' },
  data: { env: 'WHARF_DATA', flag: 'data', default: './data' },
  'log.level': { env: 'WHARF_LOG_LEVEL', flag: 'logLevel', default: 'info' },
  'log.format': { env: 'WHARF_LOG_FORMAT', flag: 'logFormat', default: 'auto' },
  'uploads.maxAge': { env: 'WHARF_UPLOADS_MAX_AGE', flag: undefined, default: '24h' },
  'uploads.emptyMaxAge': { env: 'WHARF_UPLOADS_EMPTY_MAX_AGE', flag: undefined, default: '10m' },
  'uploads.maxSessions': { env: 'WHARF_UPLOADS_MAX_SESSIONS', flag: undefined, default: '1000' },
  'uploads.maxSessionsPerClient': { env: 'WHARF_UPLOADS_MAX_SESSIONS_PER_CLIENT', flag: undefined, default: '100' },
  'limits.headerTimeout': { env: 'WHARF_HEADER_TIMEOUT', flag: undefined, default: '30s' },
  'limits.idleTimeout': { env: 'WHARF_IDLE_TIMEOUT', flag: undefined, default: '60s' },
  'limits.maxConnections': { env: 'WHARF_MAX_CONNECTIONS', flag: undefined, default: 'auto' },
  'tls.cert': { env: 'WHARF_TLS_CERT', flag: 'tlsCert', default: '' },
  'tls.key': { env: 'WHARF_TLS_KEY', flag: 'tlsKey', default: '' },
  'shutdown.grace': { env: 'WHARF_SHUTDOWN_GRACE', flag: undefined, default: '10s' },
  'mirror.tagTtl': { env: 'WHARF_TAG_TTL', flag: undefined, default: '5m' },
  'mirror.notFoundTtl': { env: 'WHARF_NOT_FOUND_TTL', flag: undefined, default: '30s' },
  'mirror.maxConcurrentFills': {
    env: 'WHARF_MAX_CONCURRENT_FILLS',
    flag: undefined,
    default: String(defaultMaxConcurrentFills),
  },
  defaultUpstream: { env: 'WHARF_DEFAULT_UPSTREAM', flag: 'defaultUpstream', default: '' },
  offline: { env: 'WHARF_OFFLINE', flag: 'offline', default: 'false' },
  'log.access': { env: 'WHARF_LOG_ACCESS', flag: undefined, default: 'true' },
  'metrics.public': { env: 'WHARF_METRICS_PUBLIC', flag: undefined, default: 'false' },
  'store.verifyReads': { env: 'WHARF_VERIFY_READS', flag: undefined, default: 'true' },
  'registry.sparseManifests': { env: 'WHARF_SPARSE_MANIFESTS', flag: undefined, default: 'false' },
  'store.maxSize': { env: 'WHARF_STORE_MAX_SIZE', flag: undefined, default: '' },
  'store.lowWaterMark': { env: 'WHARF_STORE_LOW_WATER_MARK', flag: undefined, default: '90%' },
  'store.gc.interval': { env: 'WHARF_GC_INTERVAL', flag: undefined, default: '1h' },
  'store.gc.grace': { env: 'WHARF_GC_GRACE', flag: undefined, default: '1h' },
  'store.gc.inUse': { env: 'WHARF_GC_IN_USE', flag: undefined, default: '1m' },
  // ADR 0013: a full pass of a 4.8 TB store a week, for about 0.5 % of a core.
  'store.scrub.rate': { env: 'WHARF_SCRUB_RATE', flag: undefined, default: '8MiB' },
  'store.scrub.interval': { env: 'WHARF_SCRUB_INTERVAL', flag: undefined, default: '7d' },
} as const;
type Key = keyof typeof options;

export interface ConfigSources {
  /** The YAML file path, if one was named. */
  file?: string;
  env: Record<string, string | undefined>;
  flags: Record<string, string | undefined>;
  /** `--upstream host=url`, repeatable. */
  upstreamFlags?: string[];
  /** `--mirror-upstream host=url`, repeatable: an upstream that is a mirror, sent ?ns=<host>. */
  mirrorUpstreamFlags?: string[];
  /** `--local pattern`, repeatable. */
  localFlags?: string[];
}

export function loadConfig(sources: ConfigSources): Config {
  const file =
    sources.file === undefined
      ? { scalars: {}, upstreams: undefined, auth: undefined, local: undefined, pin: undefined }
      : readConfigFile(sources.file);
  const raw = (key: Key): { value: string; from: string } => {
    const option = options[key];
    const flagName: string | undefined = option.flag;
    const flag = flagName === undefined ? undefined : sources.flags[flagName];
    if (flag !== undefined && flagName !== undefined) {
      return { value: flag, from: `--${flagName.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}` };
    }
    const env = sources.env[option.env];
    if (env !== undefined && env !== '') return { value: env, from: option.env };
    const fromFile = file.scalars[key];
    if (fromFile !== undefined) return { value: fromFile, from: key };
    return { value: option.default, from: key };
  };
  const level = raw('log.level');
  if (!(logLevels as readonly string[]).includes(level.value)) {
    throw new ConfigError(level.from, `expected one of ${logLevels.join(', ')}, got ${JSON.stringify(level.value)}`);
  }
  const format = raw('log.format');
  if (!(logFormats as readonly string[]).includes(format.value)) {
    throw new ConfigError(format.from, `expected one of ${logFormats.join(', ')}, got ${JSON.stringify(format.value)}`);
  }
  const data = raw('data');
  if (data.value.trim() === '') throw new ConfigError(data.from, 'must not be empty');
  const tagTtlMs = parseDuration(raw('mirror.tagTtl'));
  const notFoundTtlMs = parseDuration(raw('mirror.notFoundTtl'));
  const upstreams = parseUpstreams({
    file: file.upstreams,
    env: sources.env.WHARF_UPSTREAMS,
    flags: sources.upstreamFlags ?? [],
    mirrorEnv: sources.env.WHARF_MIRROR_UPSTREAMS,
    mirrorFlags: sources.mirrorUpstreamFlags ?? [],
    defaults: { tagTtlMs, notFoundTtlMs },
  });
  const defaultUpstream = raw('defaultUpstream');
  if (defaultUpstream.value !== '' && !upstreams.some((u) => u.host === defaultUpstream.value.toLowerCase())) {
    throw new ConfigError(defaultUpstream.from, `${defaultUpstream.value} is not a configured upstream`);
  }
  const local = parseLocalPatterns(file.local, sources.env.WHARF_LOCAL, sources.localFlags ?? []);
  for (const pattern of local) {
    const first = pattern.split('/', 1)[0] ?? '';
    if (upstreams.some((u) => hostComponentOf(u.host) === first)) {
      throw new ConfigError(
        'local',
        `${pattern} is under the mirrored upstream ${first}: a local name never shadows a mirrored one`,
      );
    }
  }
  const htpasswdFlag = sources.flags.htpasswd ?? (sources.env.WHARF_HTPASSWD || undefined);
  const auth = parseAuth(file.auth, htpasswdFlag);
  const offline = raw('offline');
  parseBoolean(offline);
  const maxFills = raw('mirror.maxConcurrentFills');
  if (!/^[1-9]\d{0,5}$/.test(maxFills.value.trim())) {
    throw new ConfigError(maxFills.from, `expected a whole number from 1, got ${JSON.stringify(maxFills.value)}`);
  }
  return {
    listen: parseListen(raw('listen')),
    dataDir: resolve(data.value),
    logLevel: level.value as LogLevel,
    logFormat: format.value as LogFormat,
    uploadMaxAgeMs: parseDuration(raw('uploads.maxAge')),
    shutdownGraceMs: parseDuration(raw('shutdown.grace')),
    upstreams,
    defaultUpstream: defaultUpstream.value === '' ? undefined : defaultUpstream.value.toLowerCase(),
    offline: parseBoolean(offline),
    local,
    auth,
    maxConcurrentFills: Number(maxFills.value.trim()),
    uploads: {
      maxSessions: parseCount(raw('uploads.maxSessions')),
      maxSessionsPerClient: parseCount(raw('uploads.maxSessionsPerClient')),
      emptyMaxAgeMs: parseTimeout(raw('uploads.emptyMaxAge')),
    },
    limits: {
      headerTimeoutMs: parseTimeout(raw('limits.headerTimeout')),
      idleTimeoutMs: parseTimeout(raw('limits.idleTimeout')),
      maxConnections: parseMaxConnections(raw('limits.maxConnections')),
    },
    tls: parseTls(raw('tls.cert'), raw('tls.key')),
    accessLog: parseBoolean(raw('log.access')),
    metricsPublic: parseBoolean(raw('metrics.public')),
    verifyReads: parseBoolean(raw('store.verifyReads')),
    sparseManifests: parseBoolean(raw('registry.sparseManifests')),
    lifecycle: parseLifecycle({
      maxSize: raw('store.maxSize'),
      lowWaterMark: raw('store.lowWaterMark'),
      gcInterval: raw('store.gc.interval'),
      gcGrace: raw('store.gc.grace'),
      gcInUse: raw('store.gc.inUse'),
      scrubRate: raw('store.scrub.rate'),
      scrubInterval: raw('store.scrub.interval'),
      pinFile: file.pin,
      pinEnv: sources.env.WHARF_STORE_PIN,
    }),
  };
}

function parseBoolean({ value, from }: Sourced): boolean {
  if (!['true', 'false', '1', '0'].includes(value)) {
    throw new ConfigError(from, `expected true or false, got ${JSON.stringify(value)}`);
  }
  return value === 'true' || value === '1';
}

/** "auto" (the default) sizes the cap from the open-file limit; see open-file-limit.ts. */
function parseMaxConnections(sourced: Sourced): number {
  return sourced.value.trim() === 'auto' ? defaultMaxConnections() : parseCount(sourced);
}

function parseTls(cert: Sourced, key: Sourced): Config['tls'] {
  if (cert.value === '' && key.value === '') return undefined;
  if (cert.value === '') throw new ConfigError(cert.from, `is required with ${key.from}`);
  if (key.value === '') throw new ConfigError(key.from, `is required with ${cert.from}`);
  return { cert: resolve(cert.value), key: resolve(key.value) };
}

/** As proxy/router.ts names a host in a repository name (no port colon). */
function hostComponentOf(host: string): string {
  return host.toLowerCase().replace(/:/g, '-');
}

/**
 * Flattens the YAML file to dotted keys, refusing keys wharf does not know (a
 * typo should not pass silently). `upstreams` is a map keyed by host names,
 * which have dots of their own, so it is kept whole for parseUpstreams.
 */
interface ConfigFile {
  scalars: Partial<Record<Key, string>>;
  upstreams: unknown;
  auth: Record<string, unknown> | undefined;
  local: unknown;
  pin: unknown;
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError('--config', `cannot read ${path}: ${(error as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new ConfigError('--config', `${path} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const scalars: Partial<Record<Key, string>> = {};
  let upstreams: unknown;
  let auth: Record<string, unknown> | undefined;
  let local: unknown;
  let pin: unknown;
  const walk = (node: unknown, prefix: string): void => {
    if (node === null || node === undefined) return;
    if (prefix === 'upstreams') {
      upstreams = node;
      return;
    }
    if (prefix === 'local') {
      local = node;
      return;
    }
    if (prefix === 'store.pin') {
      pin = node;
      return;
    }
    if (prefix === 'auth') {
      if (typeof node !== 'object' || Array.isArray(node)) throw new ConfigError('auth', 'expected a map');
      auth = node as Record<string, unknown>;
      return;
    }
    if (typeof node === 'object' && !Array.isArray(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
      return;
    }
    if (!(prefix in options)) {
      // `log: debug` where `log: { level: debug }` is meant: say what the section holds.
      const inside = Object.keys(options).filter((key) => key.startsWith(`${prefix}.`));
      if (inside.length > 0) {
        throw new ConfigError(prefix, `expected a map with ${inside.join(', ')}, got ${JSON.stringify(node)}`);
      }
      throw new ConfigError(prefix || '(root)', `unknown option in ${path}`);
    }
    if (typeof node !== 'string' && typeof node !== 'number' && typeof node !== 'boolean') {
      throw new ConfigError(prefix, 'expected a string, number or boolean');
    }
    scalars[prefix as Key] = String(node);
  };
  walk(doc, '');
  return { scalars, upstreams, auth, local, pin };
}
