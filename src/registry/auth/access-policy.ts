/**
 * @module registry/auth/access-policy
 * Who may do what to which repository. Rights come from rules, each naming
 * repository patterns, who it is for (user names, `*` for any signed-in user,
 * `anonymous` for everyone) and the actions it allows; a client gets the union
 * of every rule that matches it (a signed-in user also gets what anonymous gets).
 *
 * Two rules sit above the table:
 * - A mirrored name is read-only over HTTP: push and delete there need `admin`
 *   (the mirror is fed by its upstream, or by the operator).
 * - A private upstream's names are never served to anonymous clients, whatever
 *   the rules say, and rules for `anonymous` do not count there: content fetched
 *   with credentials is for signed-in users that a rule names (or `*`).
 */
import { compileNamePattern, type NamePattern } from './name-pattern.js';

export const actions = ['pull', 'push', 'delete', 'admin'] as const;
export type Action = (typeof actions)[number];

export interface AccessRule {
  repositories: string[];
  /** User names; `*` is any signed-in user, `anonymous` any client at all. */
  users: string[];
  allow: Action[];
}

/** What the HTTP layer knows of a name: whether it is mirrored, and whether its upstream is private. */
export interface NameClass {
  mirrored: boolean;
  private: boolean;
  /** Where the content lives in the store: the canonical `<host>/<path>` for mirrored names. */
  storeName: string;
  /** The upstream host a mirrored name comes from. */
  upstream?: string;
}

interface CompiledRule {
  patterns: NamePattern[];
  anonymous: boolean;
  anyUser: boolean;
  users: Set<string>;
  allow: Set<Action>;
}

/** The rules used when the config names none (docs/decisions/0003). */
export function defaultRules(hasUsers: boolean): AccessRule[] {
  // Without users, the ecosystem's default (distribution, zot): anyone may push to local names.
  if (!hasUsers) return [{ repositories: ['**'], users: ['anonymous'], allow: ['pull', 'push', 'delete'] }];
  return [
    { repositories: ['**'], users: ['*'], allow: ['pull', 'push', 'delete'] },
    { repositories: ['**'], users: ['anonymous'], allow: ['pull'] },
  ];
}

/** Rights are asked on every request and the rules never change: answers are kept, this many at most. */
const maxCachedRights = 10_000;

export class AccessPolicy {
  private readonly rules: CompiledRule[];
  private readonly cache = new Map<string, ReadonlySet<Action>>();

  constructor(rules: readonly AccessRule[]) {
    this.rules = rules.map((rule) => ({
      patterns: rule.repositories.map(compileNamePattern),
      anonymous: rule.users.includes('anonymous'),
      anyUser: rule.users.includes('*'),
      users: new Set(rule.users),
      allow: new Set(rule.allow),
    }));
  }

  /**
   * The actions `user` (undefined: anonymous) may take on a name. The rules are
   * matched against the store name, so `docker.io/**` covers a Docker Hub image
   * however the client named it (`?ns=`, a path prefix, the default upstream).
   */
  rights(user: string | undefined, name: NameClass): ReadonlySet<Action> {
    // Stryker disable next-line StringLiteral: '' stands for anonymous; no user name is '' (parseBasic requires one).
    const key = `${user ?? ''}\0${name.storeName}\0${name.mirrored ? 1 : 0}${name.private ? 1 : 0}`;
    let granted = this.cache.get(key);
    // Stryker disable next-line ConditionalExpression: computing again gives the same answer (the cache only saves time).
    if (granted === undefined) {
      granted = this.compute(user, name);
      // Stryker disable next-line ConditionalExpression,EqualityOperator: when the cache is emptied changes memory, not answers.
      if (this.cache.size >= maxCachedRights) this.cache.clear();
      this.cache.set(key, granted);
    }
    return granted;
  }

  private compute(user: string | undefined, name: NameClass): Set<Action> {
    const granted = new Set<Action>();
    // Stryker disable next-line ConditionalExpression: a shortcut; the loop below gives anonymous clients nothing on private names either.
    if (user === undefined && name.private) return granted;
    for (const rule of this.rules) {
      // Rules for anonymous clients apply to everyone, except on private names: there only rules
      // naming signed-in users count, so `anonymous: pull **` never opens private content.
      const forUser = user !== undefined && (rule.anyUser || rule.users.has(user));
      const applies = forUser || (rule.anonymous && !name.private);
      if (!applies || !rule.patterns.some((matches) => matches(name.storeName))) continue;
      for (const action of rule.allow) granted.add(action);
    }
    if (granted.has('admin')) for (const action of actions) granted.add(action);
    if (name.mirrored && !granted.has('admin')) {
      granted.delete('push');
      granted.delete('delete');
    }
    return granted;
  }

  /** Whether any rule could give anonymous clients a write anywhere (for the start-up warning). */
  anonymousMayWrite(): boolean {
    return this.rules.some((rule) => rule.anonymous && (rule.allow.has('push') || rule.allow.has('admin')));
  }
}
