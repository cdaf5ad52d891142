/**
 * @module upstream/credentials
 * What wharf can present to an upstream, and where it comes from: the upstream's own config
 * first, then (when enabled) the Docker client's stored credentials.
 */
import type { Logger } from './logger.js';
import { lookupDockerCredentials, type Environment } from './docker-config.js';

export type Credentials =
  /** Sent as Basic to a Basic challenge, and to the token service of a Bearer challenge. */
  | { kind: 'basic'; username: string; password: string }
  /** A registry token, sent as `Authorization: Bearer` on every registry request as it is. */
  | { kind: 'bearer'; token: string }
  /** An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token service by POST. */
  | { kind: 'identity'; token: string; username?: string };

export interface CredentialSources {
  host: string;
  username?: string;
  password?: string;
  token?: string;
  useDockerConfig?: boolean;
}

/** Config wins over the Docker config, as an explicit setting should. */
export async function resolveCredentials(
  sources: CredentialSources,
  env: Environment | undefined,
  logger: Logger,
): Promise<Credentials | undefined> {
  if (sources.username !== undefined && sources.password !== undefined) {
    return { kind: 'basic', username: sources.username, password: sources.password };
  }
  if (sources.token !== undefined && sources.token !== '') return { kind: 'bearer', token: sources.token };
  if (sources.username !== undefined) {
    logger.warn({ upstream: sources.host }, 'upstream username configured without a password: ignored');
  }
  if (sources.useDockerConfig !== true) return undefined;
  return lookupDockerCredentials(sources.host, env, logger);
}

/** For logs: which kind of credential, never the secret. */
export function describeCredentials(credentials: Credentials | undefined): string {
  if (credentials === undefined) return 'anonymous';
  return credentials.kind === 'bearer' ? 'bearer' : `${credentials.kind}:${credentials.username ?? ''}`;
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
