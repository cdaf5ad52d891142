/**
 * @module cli/auth-config
 * The `auth:` and `local:` sections of the config file: users (an htpasswd
 * file and/or a map of bcrypt hashes), access rules, token lifetime and realm,
 * and the local name patterns. Every refusal names the key.
 */
import { readFileSync } from 'node:fs';
import { actions, type AccessRule, type Action } from '../registry/auth/access-policy.js';
import { namePatternSyntax } from '../registry/auth/name-pattern.js';
import { bcryptHashPattern, parseHtpasswd } from '../registry/auth/user-table.js';
import { ConfigError, parseDuration } from './config-values.js';

export interface AuthSettings {
  /** User name → bcrypt hash. Empty: nobody signs in. */
  users: Map<string, string>;
  /** undefined: the defaults of registry/auth/access-policy.ts (defaultRules). */
  access: AccessRule[] | undefined;
  tokenTtlMs: number;
  realm: string | undefined;
}

export const authKeys = new Set(['htpasswd', 'users', 'access', 'tokenTtl', 'realm']);

function stringList(value: unknown, from: string): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item === '')) {
    throw new ConfigError(from, 'expected a list of strings');
  }
  return value as string[];
}

export function checkNamePatterns(patterns: string[], from: string): string[] {
  for (const pattern of patterns) {
    if (!namePatternSyntax.test(pattern)) {
      throw new ConfigError(from, `invalid repository pattern ${JSON.stringify(pattern)}`);
    }
  }
  return patterns;
}

/** `local:` from the file (a list) or WHARF_LOCAL / --local (comma-separated). */
export function parseLocalPatterns(file: unknown, env: string | undefined, flags: string[]): string[] {
  if (flags.length > 0) return checkNamePatterns(flags.flatMap((f) => f.split(',')).filter(Boolean), '--local');
  if (env !== undefined && env !== '') return checkNamePatterns(env.split(',').filter(Boolean), 'WHARF_LOCAL');
  if (file === undefined || file === null) return [];
  return checkNamePatterns(stringList(file, 'local'), 'local');
}

function parseRules(value: unknown): AccessRule[] {
  if (!Array.isArray(value)) throw new ConfigError('auth.access', 'expected a list of rules');
  return value.map((raw: unknown, index) => {
    const from = `auth.access[${index}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(from, 'expected a map');
    const entry = raw as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (!['repositories', 'users', 'allow'].includes(key)) throw new ConfigError(`${from}.${key}`, 'unknown option');
    }
    const allow = stringList(entry['allow'], `${from}.allow`);
    for (const action of allow) {
      if (!(actions as readonly string[]).includes(action)) {
        throw new ConfigError(`${from}.allow`, `unknown action ${JSON.stringify(action)} (${actions.join(', ')})`);
      }
    }
    return {
      repositories: checkNamePatterns(
        stringList(entry['repositories'], `${from}.repositories`),
        `${from}.repositories`,
      ),
      users: stringList(entry['users'], `${from}.users`),
      allow: allow as Action[],
    };
  });
}

export function parseAuth(section: Record<string, unknown> | undefined, htpasswdOverride?: string): AuthSettings {
  const entry = section ?? {};
  for (const key of Object.keys(entry)) {
    if (!authKeys.has(key)) throw new ConfigError(`auth.${key}`, 'unknown option');
  }
  const users = new Map<string, string>();
  const htpasswd = htpasswdOverride ?? entry['htpasswd'];
  if (htpasswd !== undefined && htpasswd !== null && htpasswd !== '') {
    if (typeof htpasswd !== 'string') throw new ConfigError('auth.htpasswd', 'expected a file path');
    let text: string;
    try {
      text = readFileSync(htpasswd, 'utf8');
    } catch (error) {
      throw new ConfigError('auth.htpasswd', `cannot read ${htpasswd}: ${(error as Error).message}`);
    }
    try {
      for (const [user, hash] of parseHtpasswd(text)) users.set(user, hash);
    } catch (error) {
      throw new ConfigError('auth.htpasswd', `${htpasswd}: ${(error as Error).message}`);
    }
  }
  const listed = entry['users'];
  if (listed !== undefined && listed !== null) {
    if (typeof listed !== 'object' || Array.isArray(listed)) {
      throw new ConfigError('auth.users', 'expected a map of user name to bcrypt hash');
    }
    for (const [user, hash] of Object.entries(listed)) {
      if (typeof hash !== 'string' || !bcryptHashPattern.test(hash)) {
        throw new ConfigError(`auth.users.${user}`, 'expected a bcrypt hash (htpasswd -nB user), never a password');
      }
      users.set(user, hash);
    }
  }
  const rawRealm = entry['realm'];
  if (rawRealm !== undefined && (typeof rawRealm !== 'string' || !/^https?:\/\/\S+$/.test(rawRealm))) {
    throw new ConfigError('auth.realm', 'expected the http(s) URL of /token as clients reach it');
  }
  const realm = rawRealm;
  const ttl = entry['tokenTtl'];
  if (ttl !== undefined && typeof ttl !== 'string' && typeof ttl !== 'number') {
    throw new ConfigError('auth.tokenTtl', 'expected a duration like 5m');
  }
  return {
    users,
    access: entry['access'] === undefined || entry['access'] === null ? undefined : parseRules(entry['access']),
    tokenTtlMs: ttl === undefined ? 5 * 60 * 1000 : parseTokenTtl(String(ttl)),
    realm,
  };
}

/**
 * docker and containers/image treat any token lifetime under 60 s as 60 s (distribution: a token
 * "must not live less than 60 seconds") and do not retry a 401 mid-pull, so a shorter one breaks
 * their pulls: refused.
 */
function parseTokenTtl(value: string): number {
  const ms = parseDuration({ value, from: 'auth.tokenTtl' });
  if (ms < 60_000) throw new ConfigError('auth.tokenTtl', `must be at least 60s (clients assume so), got ${value}`);
  return ms;
}
