/**
 * @module cli/lifecycle-config
 * The `store:` section (docs/decisions/0008-gc-and-eviction.md): store.maxSize
 * and its low-water mark, store.pin patterns, store.gc.interval,
 * store.gc.grace and store.gc.inUse; store.scrub.rate and store.scrub.interval (ADR 0013).
 * Every refusal names the key it came from.
 */
import { checkNamePatterns } from './auth-config.js';
import { ConfigError, parseDuration, parseTimeout, type Sourced } from './config-values.js';

export interface LifecycleConfig {
  /** Bytes; undefined: no limit. */
  maxSizeBytes: number | undefined;
  /** Bytes an eviction frees down to (below maxSizeBytes). */
  lowWaterBytes: number | undefined;
  /** Repository patterns never evicted nor collected. */
  pin: string[];
  /** Between scheduled gc runs in serve; 0: none. */
  gcIntervalMs: number;
  /** What was created or read within this long is never collected. */
  gcGraceMs: number;
  /**
   * store.gc.inUse: how long a read keeps content from gc and eviction, whatever its age
   * (content-guard.ts; default 1 min). Must be longer than 0.
   */
  inUseMs: number;
  /** store.scrub.rate: bytes per second serve's background scrub hashes at most; 0: no scrub. */
  scrubRateBytes: number;
  /** store.scrub.interval: a blob verified within this long is not scrubbed again. */
  scrubIntervalMs: number;
}

const sizeUnits: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** `50GiB`, `500MB`, `1.5TiB`, `1048576` (bytes). */
export function parseSize({ value, from }: Sourced): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = sizeUnits[match?.[2]?.toLowerCase() ?? 'x'];
  if (match === null || unit === undefined) {
    throw new ConfigError(from, `expected a size like 50GiB, 500MB or a number of bytes, got ${JSON.stringify(value)}`);
  }
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes <= 0) throw new ConfigError(from, 'must be more than 0 bytes');
  return bytes;
}

/** `90%` of maxSize, or a size below it. */
function parseLowWater(sourced: Sourced, maxBytes: number): number {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(sourced.value.trim());
  const bytes = percent === null ? parseSize(sourced) : Math.floor((Number(percent[1]) / 100) * maxBytes);
  if (bytes <= 0 || bytes >= maxBytes) {
    throw new ConfigError(sourced.from, `must be below store.maxSize (${maxBytes} bytes) and above 0`);
  }
  return bytes;
}

/** "0" or "off" turns the schedule off. */
function parseInterval(sourced: Sourced): number {
  if (['0', 'off', 'false'].includes(sourced.value.trim())) return 0;
  return parseDuration(sourced);
}

export function parseLifecycle(values: {
  maxSize: Sourced;
  lowWaterMark: Sourced;
  gcInterval: Sourced;
  gcGrace: Sourced;
  gcInUse: Sourced;
  scrubRate: Sourced;
  scrubInterval: Sourced;
  pinFile: unknown;
  pinEnv: string | undefined;
}): LifecycleConfig {
  const maxSizeBytes = values.maxSize.value.trim() === '' ? undefined : parseSize(values.maxSize);
  return {
    maxSizeBytes,
    lowWaterBytes: maxSizeBytes === undefined ? undefined : parseLowWater(values.lowWaterMark, maxSizeBytes),
    pin: parsePins(values.pinFile, values.pinEnv),
    gcIntervalMs: parseInterval(values.gcInterval),
    gcGraceMs: parseDuration(values.gcGrace),
    inUseMs: parseTimeout(values.gcInUse),
    scrubRateBytes: ['0', 'off', 'false'].includes(values.scrubRate.value.trim()) ? 0 : parseSize(values.scrubRate),
    scrubIntervalMs: parseDuration(values.scrubInterval),
  };
}

/** `store.pin` from the file (a list) or WHARF_STORE_PIN (comma-separated). */
function parsePins(file: unknown, env: string | undefined): string[] {
  if (env !== undefined && env !== '') return checkNamePatterns(env.split(',').filter(Boolean), 'WHARF_STORE_PIN');
  if (file === undefined || file === null) return [];
  if (!Array.isArray(file) || file.some((item) => typeof item !== 'string' || item === '')) {
    throw new ConfigError('store.pin', 'expected a list of repository patterns');
  }
  return checkNamePatterns(file as string[], 'store.pin');
}
