/**
 * @module upstream/docker-config
 * Credentials stored by the Docker CLI (docker/cli cli/config/configfile/file.go):
 * `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Lookup order as the CLI's:
 * `credHelpers[key]`, then `credsStore`, then the inline `auths[key]`.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Credentials } from './credentials.js';
import { runCredentialHelper } from './credential-helper.js';
import type { Logger } from './logger.js';

/** The process environment as handed in by cli/ (the only layer that reads the environment). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** Docker Hub's key in config.json, whatever name the image used (CLI registry.IndexServer). */
export const dockerHubConfigKey = 'https://index.docker.io/v1/';
const dockerHubHosts: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, unknown>;
  credsStore?: unknown;
}

export function dockerConfigKey(host: string): string {
  return dockerHubHosts.has(host) ? dockerHubConfigKey : host;
}

export function dockerConfigPath(env: Environment | undefined): string {
  const dir = env?.['DOCKER_CONFIG'];
  return join(dir !== undefined && dir !== '' ? dir : join(env?.['HOME'] ?? homedir(), '.docker'), 'config.json');
}

/** 'https://ghcr.io/', 'ghcr.io/v2' → 'ghcr.io' (the CLI's ConvertToHostname). */
function hostnameOf(key: string): string {
  return key.replace(/^https?:\/\//, '').split('/')[0] ?? key;
}

function findAuthEntry(auths: Record<string, AuthEntry> | undefined, key: string): AuthEntry | undefined {
  if (auths === undefined) return undefined;
  const exact = auths[key];
  if (exact !== undefined) return exact;
  const wanted = hostnameOf(key);
  const match = Object.keys(auths).find((candidate) => hostnameOf(candidate) === wanted);
  return match === undefined ? undefined : auths[match];
}

function fromAuthEntry(entry: AuthEntry): Credentials | undefined {
  const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  let username = str(entry.username);
  let password = str(entry.password);
  const auth = str(entry.auth);
  if (auth !== undefined) {
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  const identity = str(entry.identitytoken);
  if (identity !== undefined)
    return { kind: 'identity', token: identity, ...(username === undefined ? {} : { username }) };
  const registryToken = str(entry.registrytoken);
  if (registryToken !== undefined) return { kind: 'bearer', token: registryToken };
  if (username !== undefined && password !== undefined) return { kind: 'basic', username, password };
  return undefined;
}

async function readConfig(path: string, logger: Logger): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') logger.warn({ path, code }, 'docker config unreadable: no stored credentials');
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    logger.warn({ path }, 'docker config is not JSON: no stored credentials');
    return undefined;
  }
}

async function fromHelper(
  helper: string,
  key: string,
  env: Environment | undefined,
  logger: Logger,
): Promise<Credentials | undefined> {
  try {
    const found = await runCredentialHelper(helper, key, env);
    if (found === undefined) return undefined;
    // "<token>" marks an identity token (docker/cli credentials/native_store.go).
    if (found.username === '<token>') return { kind: 'identity', token: found.secret };
    return { kind: 'basic', username: found.username, password: found.secret };
  } catch (error) {
    logger.warn(
      { helper, key, err: error instanceof Error ? error.message : String(error) },
      'docker credential helper failed: trying the next source',
    );
    return undefined;
  }
}

/** The stored credentials for `host`, or undefined (anonymous). Never throws: a broken store is logged. */
export async function lookupDockerCredentials(
  host: string,
  env: Environment | undefined,
  logger: Logger,
): Promise<Credentials | undefined> {
  const path = dockerConfigPath(env);
  const config = await readConfig(path, logger);
  if (config === undefined) return undefined;
  const key = dockerConfigKey(host);
  const helper = config.credHelpers?.[key] ?? config.credHelpers?.[host];
  if (typeof helper === 'string' && helper !== '') {
    const found = await fromHelper(helper, key, env, logger);
    if (found !== undefined) return found;
  }
  if (typeof config.credsStore === 'string' && config.credsStore !== '') {
    const found = await fromHelper(config.credsStore, key, env, logger);
    if (found !== undefined) return found;
  }
  const entry = findAuthEntry(config.auths, key);
  return entry === undefined ? undefined : fromAuthEntry(entry);
}
