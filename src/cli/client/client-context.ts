/**
 * @module cli/client/client-context
 * What every client command shares: the flags that say how to reach registries (--plain-http,
 * --insecure, --certs-dir), one RegistryClient per registry for the whole command (tokens and
 * connections reused), closed at the end.
 */
import type { Command } from 'commander';
import { pino } from 'pino';
import { parseDockerRef, type DockerRef } from '../../oci/docker-ref.js';
import type { Resolver } from '../../upstream/address-guard.js';
import { defaultCertsDir } from '../../upstream/certs-dir.js';
import { RegistryClient } from '../../upstream/registry-client.js';
import { resolveEndpoint } from '../../upstream/registry-endpoint.js';

export interface RegistryFlags {
  plainHttp?: boolean;
  insecure?: boolean;
  certsDir?: string;
  json?: boolean;
  /**
   * Not a flag (no option sets it): how the registries' address guards resolve names. Tests hand
   * in a table of made-up names; absent, dns.lookup.
   */
  resolver?: Resolver;
}

export type Env = Record<string, string | undefined>;

/** Adds the registry flags to a client command. */
export function registryOptions(command: Command): Command {
  return command
    .option('--plain-http', 'talk http, not https, to the registries named')
    .option('--insecure', 'https without checking the certificate (prefer a CA in --certs-dir)')
    .option(
      '--certs-dir <dir>',
      `docker's per-registry TLS folder: <dir>/<host:port>/ca.crt, client.cert, client.key (env WHARF_CERTS_D, default ${defaultCertsDir})`,
    );
}

export class ClientContext {
  private readonly clients = new Map<string, Promise<RegistryClient>>();

  constructor(
    private readonly flags: RegistryFlags,
    private readonly env: Env,
  ) {}

  /** The client for a registry host, made once per command. */
  client(host: string): Promise<RegistryClient> {
    let found = this.clients.get(host);
    if (found === undefined) {
      found = this.open(host);
      this.clients.set(host, found);
    }
    return found;
  }

  async close(): Promise<void> {
    const opened = await Promise.allSettled([...this.clients.values()]);
    await Promise.all(opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value.close()] : [])));
  }

  private async open(host: string): Promise<RegistryClient> {
    const endpoint = await resolveEndpoint(host, {
      plainHttp: this.flags.plainHttp,
      insecure: this.flags.insecure,
      certsDir: this.flags.certsDir ?? this.env.WHARF_CERTS_D ?? defaultCertsDir,
    });
    // Warnings (a broken credential helper, a refused redirect) go to stderr; data goes to stdout.
    const logger = pino({ level: this.env.WHARF_LOG_LEVEL ?? 'warn' }, process.stderr);
    const { resolver } = this.flags;
    return new RegistryClient({ host, url: endpoint.url, tls: endpoint.tls, env: this.env, logger, resolver });
  }
}

/** Runs `body` with a context, closing its clients whatever happens. */
export async function withClients<T>(
  flags: RegistryFlags,
  env: Env,
  body: (context: ClientContext) => Promise<T>,
): Promise<T> {
  const context = new ClientContext(flags, env);
  try {
    return await body(context);
  } finally {
    await context.close();
  }
}

/** Parses a reference and opens its registry's client. */
export async function openRef(
  context: ClientContext,
  value: string,
  options: { defaultTag?: boolean } = {},
): Promise<{ ref: DockerRef; client: RegistryClient }> {
  const ref = parseDockerRef(value, options);
  return { ref, client: await context.client(ref.registry) };
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
