/**
 * @module test/support/wharf
 * Starts a real wharf server in-process on 127.0.0.1:0 over a fresh temp data dir.
 * Tests never get the built-in upstreams (Docker Hub and friends): only what they pass.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthSettings } from '../../src/cli/auth-config.js';
import type { Logger } from 'pino';
import type { UpstreamSettings } from '../../src/cli/config.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/cli/start-server.js';

export interface WharfHandle {
  /** http://127.0.0.1:<port> with no trailing slash */
  url: string;
  /** 127.0.0.1:<port>, what skopeo and other clients want */
  host: string;
  dataDir: string;
  server: RunningServer;
  close(): Promise<void>;
}

export interface WharfOptions {
  dataDir?: string;
  keepData?: boolean;
  /** host → url, with short test TTLs unless given. */
  upstreams?: Array<Partial<UpstreamSettings> & { host: string; url: string }>;
  defaultUpstream?: string;
  offline?: boolean;
  local?: string[];
  auth?: AuthSettings;
  /** A logger to capture what the server logs (silent when absent). */
  logger?: Logger;
  maxConcurrentFills?: number;
  uploads?: ServerOptions['uploads'];
  limits?: ServerOptions['limits'];
  accessLog?: boolean;
  metricsPublic?: boolean;
  /** registry.sparseManifests. */
  sparseManifests?: boolean;
  /** store.maxSize, pins, gc schedule, the in-use window (cli/server-lifecycle.ts). */
  lifecycle?: ServerOptions['lifecycle'];
  /** How the upstreams' names resolve (a table of made-up names, see table-resolver.ts); dns.lookup when absent. */
  resolver?: ServerOptions['resolver'];
}

export async function startWharf(options: WharfOptions = {}): Promise<WharfHandle> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-test-')));
  const server = await startServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    upstreams: (options.upstreams ?? []).map((u) => ({
      dockerConfig: false,
      public: false,
      tagTtlMs: 60_000,
      notFoundTtlMs: 1_000,
      prefetch: true,
      ...u,
    })),
    defaultUpstream: options.defaultUpstream,
    offline: options.offline,
    local: options.local,
    auth: options.auth,
    logger: options.logger,
    maxConcurrentFills: options.maxConcurrentFills,
    uploads: options.uploads,
    limits: options.limits,
    accessLog: options.accessLog,
    metricsPublic: options.metricsPublic,
    sparseManifests: options.sparseManifests,
    lifecycle: options.lifecycle,
    resolver: options.resolver,
  });
  const host = `127.0.0.1:${server.port}`;
  return {
    url: `http://${host}`,
    host,
    dataDir,
    server,
    async close() {
      await server.close();
      if (options.dataDir === undefined && options.keepData !== true)
        await rm(dataDir, { recursive: true, force: true });
    },
  };
}
