/**
 * @module cli/client-auth-setup
 * Builds the HTTP layer's view of clients and names from the config: the user
 * table, access rules, token issuer, and a name resolver over the mirror's router.
 */
import { isIP } from 'node:net';
import type { RepoName } from '../oci/reference.js';
import type { Logger } from '../oci/logger.js';
import type { Router } from '../proxy/router.js';
import { AccessPolicy, defaultRules, type NameClass } from '../registry/auth/access-policy.js';
import { ClientAuth } from '../registry/auth/client-auth.js';
import { LoginLimiter } from '../registry/auth/login-limiter.js';
import type { NameResolver } from '../registry/auth/name-resolver.js';
import { TokenIssuer } from '../registry/auth/tokens.js';
import { UserTable } from '../registry/auth/user-table.js';
import type { AuthSettings } from './auth-config.js';

/** The `service` clients name in token requests, and the audience of the tokens. */
export const tokenService = 'wharf';

export function createClientAuth(settings: AuthSettings | undefined): ClientAuth {
  const users = settings?.users ?? new Map<string, string>();
  return new ClientAuth({
    users: new UserTable(users),
    policy: new AccessPolicy(settings?.access ?? defaultRules(users.size > 0)),
    tokens: new TokenIssuer(tokenService, Math.max(1, Math.round((settings?.tokenTtlMs ?? 300_000) / 1000))),
    limiter: new LoginLimiter(),
    ...(settings?.realm === undefined ? {} : { realm: settings.realm }),
  });
}

export function createNameResolver(router: Router): NameResolver {
  const classify = (name: RepoName, namespace?: string): NameClass => {
    const route = router.resolve(name, namespace);
    if (route.kind === 'local') return { mirrored: false, private: false, storeName: name };
    return {
      mirrored: true,
      private: route.upstream.private,
      storeName: route.canonical,
      upstream: route.upstream.host,
    };
  };
  return {
    classify,
    classifyAll: (name) => {
      const classes = [classify(name)];
      // A name that already names its registry (a path prefix) is that upstream's, whatever ns= says.
      if (classes[0]?.mirrored === true && classes[0].storeName === name) return classes;
      for (const upstream of router.upstreams) {
        try {
          classes.push(classify(name, upstream.host));
        } catch {
          // too long once the host is added: not a name this upstream can serve
        }
      }
      return classes;
    },
  };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** Start-up warnings for settings that are legal but probably not what the operator wants on a network. */
export function warnAboutAccess(
  logger: Logger,
  auth: ClientAuth,
  listenHost: string,
  privateUpstreams: string[],
): void {
  if (auth.policy.anonymousMayWrite() && !isLoopback(listenHost)) {
    logger.warn(
      { listen: listenHost },
      'anyone who can reach this address may push to local names: configure auth.users or auth.htpasswd',
    );
  }
  if (!auth.enabled && privateUpstreams.length > 0) {
    logger.warn(
      { upstreams: privateUpstreams },
      'these upstreams are private (wharf may use credentials for them) and no users are configured: their content is served to nobody; configure users or set public: true',
    );
  }
}
