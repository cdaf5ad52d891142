/**
 * @module cli/upstream-router
 * The configured upstreams as UpstreamRegistry clients behind one Router:
 * shared by `wharf serve` and `wharf preload`, so both dial the same hosts
 * with the same credentials, timeouts and name routing.
 */
import type { Logger } from 'pino';
import { Router } from '../proxy/router.js';
import { compileNamePattern, matchesAny } from '../registry/auth/name-pattern.js';
import type { Resolver } from '../upstream/address-guard.js';
import { UpstreamRegistry, type UpstreamRegistryOptions } from '../upstream/upstream-registry.js';
import type { UpstreamSettings } from './config.js';
import { isPrivateUpstream } from './config-values.js';

export interface UpstreamRouting {
  router: Router;
  clients: { settings: UpstreamSettings; client: UpstreamRegistry }[];
}

export function createUpstreamRouter(
  upstreams: readonly UpstreamSettings[],
  defaultUpstream: string | undefined,
  local: readonly string[],
  logger: Logger,
  observe?: UpstreamRegistryOptions['observe'],
  /** Tests only (a table of made-up names); dns.lookup otherwise. */
  resolver?: Resolver,
): UpstreamRouting {
  const localPatterns = local.map(compileNamePattern);
  const clients = upstreams.map((settings) => ({
    settings,
    client: new UpstreamRegistry(
      {
        host: settings.host,
        url: settings.url,
        username: settings.username,
        password: settings.password,
        token: settings.token,
        useDockerConfig: settings.dockerConfig,
        timeouts: settings.timeouts,
        ...(settings.mirror === true ? { namespace: settings.host } : {}),
      },
      // Credential helpers and ~/.docker/config.json are found through the process environment.
      {
        logger,
        env: process.env,
        ...(observe === undefined ? {} : { observe }),
        ...(resolver === undefined ? {} : { resolver }),
      },
    ),
  }));
  const router = new Router(
    clients.map(({ settings, client }) => ({
      host: settings.host,
      client,
      tagTtlMs: settings.tagTtlMs,
      notFoundTtlMs: settings.notFoundTtlMs,
      private: isPrivateUpstream(settings),
      prefetch: settings.prefetch,
    })),
    defaultUpstream,
    (name) => matchesAny(localPatterns, name),
  );
  return { router, clients };
}
