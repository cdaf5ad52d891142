/**
 * @module cli/config
 * wharf's settings from three places, later ones winning: the YAML file
 * (--config / WHARF_CONFIG), environment variables (WHARF_*), then flags.
 * A bad value is one clear line naming the key it came from.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface Config {
  listen: { host: string; port: number };
  dataDir: string;
  logLevel: LogLevel;
  uploadMaxAgeMs: number;
  shutdownGraceMs: number;
}

/** Every option by its dotted YAML key, with the environment variable and flag that set it. */
const options = {
  listen: { env: 'WHARF_LISTEN', flag: 'listen', default: ':5000' },
  data: { env: 'WHARF_DATA', flag: 'data', default: './data' },
  'log.level': { env: 'WHARF_LOG_LEVEL', flag: 'logLevel', default: 'info' },
  'uploads.maxAge': { env: 'WHARF_UPLOADS_MAX_AGE', flag: undefined, default: '24h' },
  'shutdown.grace': { env: 'WHARF_SHUTDOWN_GRACE', flag: undefined, default: '10s' },
} as const;
type Key = keyof typeof options;

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config: ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** The YAML file path, if one was named. */
  file?: string;
  env: Record<string, string | undefined>;
  flags: Record<string, string | undefined>;
}

export function loadConfig(sources: ConfigSources): Config {
  const fromFile = sources.file === undefined ? {} : readConfigFile(sources.file);
  const raw = (key: Key): { value: string; from: string } => {
    const option = options[key];
    const flagName: string | undefined = option.flag;
    const flag = flagName === undefined ? undefined : sources.flags[flagName];
    if (flag !== undefined && flagName !== undefined) {
      return { value: flag, from: `--${flagName.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}` };
    }
    const env = sources.env[option.env];
    if (env !== undefined && env !== '') return { value: env, from: option.env };
    const file = fromFile[key];
    if (file !== undefined) return { value: file, from: key };
    return { value: option.default, from: key };
  };
  const level = raw('log.level');
  if (!(logLevels as readonly string[]).includes(level.value)) {
    throw new ConfigError(level.from, `expected one of ${logLevels.join(', ')}, got ${JSON.stringify(level.value)}`);
  }
  const data = raw('data');
  if (data.value.trim() === '') throw new ConfigError(data.from, 'must not be empty');
  return {
    listen: parseListen(raw('listen')),
    dataDir: resolve(data.value),
    logLevel: level.value as LogLevel,
    uploadMaxAgeMs: parseDuration(raw('uploads.maxAge')),
    shutdownGraceMs: parseDuration(raw('shutdown.grace')),
  };
}

/** Flattens the YAML file to dotted keys, refusing keys wharf does not know (a typo should not pass silently). */
function readConfigFile(path: string): Partial<Record<Key, string>> {
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
  const out: Partial<Record<Key, string>> = {};
  const walk = (node: unknown, prefix: string): void => {
    if (node === null || node === undefined) return;
    if (typeof node === 'object' && !Array.isArray(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
      return;
    }
    if (!(prefix in options)) throw new ConfigError(prefix || '(root)', `unknown option in ${path}`);
    if (typeof node !== 'string' && typeof node !== 'number')
      throw new ConfigError(prefix, 'expected a string or number');
    out[prefix as Key] = String(node);
  };
  walk(doc, '');
  return out;
}

/** "host:port", ":port", "port" or "[v6]:port". */
export function parseListen({ value, from }: { value: string; from: string }): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))?:?(\d+)$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(from, `expected host:port, :port or port, got ${JSON.stringify(value)}`);
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "30s", "10m", "24h", "7d", or a bare number of seconds. */
export function parseDuration({ value, from }: { value: string; from: string }): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (match === null)
    throw new ConfigError(from, `expected a duration like 30s, 10m or 24h, got ${JSON.stringify(value)}`);
  return Math.round(Number(match[1]) * (units[match[2] ?? 's'] ?? 1000));
}
