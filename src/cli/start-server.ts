/**
 * @module cli/start-server
 * Wires the store to the HTTP surface and listens (HTTPS when given a
 * certificate). The data directory is locked first, before anything in it is
 * cleaned. Shutdown stops accepting at once, lets requests in flight finish
 * (up to a grace period), then closes the index and releases the lock.
 */
import { getRequestListener } from '@hono/node-server';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { ProxySource } from '../proxy/proxy-source.js';
import { createRegistryApp } from '../registry/app.js';
import { LocalStore } from '../store/local-store.js';
import type { LogLevel, UpstreamSettings } from './config.js';
import type { AuthSettings } from './auth-config.js';
import { createClientAuth, createNameResolver, warnAboutAccess } from './client-auth-setup.js';
import { isPrivateUpstream } from './config-values.js';
import { guardConnections, serverLimitOptions, type ConnectionLimits } from './connection-guard.js';
import { lockDataDir } from './data-dir-lock.js';
import { defaultMaxConnections } from './open-file-limit.js';
import { loadTlsPair, type TlsFiles } from './tls-files.js';
import { createUpstreamRouter } from './upstream-router.js';
import { WharfMetrics } from './metrics.js';
import { describeQuarantine, mirroredNameTest } from './quarantine-report.js';
import { lifecycleStoreOptions, startLifecycle, type ServerLifecycleOptions } from './server-lifecycle.js';
import type { GcReport } from '../store/lifecycle.js';
import type { Resolver } from '../upstream/address-guard.js';

export interface ServerOptions {
  dataDir: string;
  host: string;
  port: number;
  logLevel: LogLevel;
  logger?: Logger;
  uploadMaxAgeMs?: number;
  shutdownGraceMs?: number;
  upstreams?: UpstreamSettings[];
  defaultUpstream?: string;
  /** registry.sparseManifests: accept pushed manifests naming blobs not held (default off). */
  sparseManifests?: boolean;
  offline?: boolean;
  /** Names kept local when a default upstream is set (patterns, see registry/auth/name-pattern.ts). */
  local?: string[];
  /** Users, access rules, tokens; absent: nobody signs in and anonymous clients may push to local names. */
  auth?: AuthSettings;
  /** Upstream blob downloads at once (mirror.maxConcurrentFills). */
  maxConcurrentFills?: number;
  /** Open upload sessions, in all and per client address; and how soon an empty one expires. */
  uploads?: { maxSessions?: number; maxSessionsPerClient?: number; emptyMaxAgeMs?: number };
  /** Header and idle deadlines, connection cap (defaults: 30 s, 60 s, from the open-file limit). */
  limits?: Partial<ConnectionLimits>;
  /** Serve HTTPS with these PEM files (re-read by reloadTls). */
  tls?: TlsFiles;
  /** One JSON line per request at info (log.access; default true). */
  accessLog?: boolean;
  /** Anyone may read /metrics (metrics.public; default false: loopback clients and admins, or anyone without users). */
  metricsPublic?: boolean;
  /** Check blob bytes against their digest as they are served (store.verifyReads; default true; ADR 0009). */
  verifyReads?: boolean;
  /** store.maxSize, pins, the gc schedule (server-lifecycle.ts). */
  lifecycle?: ServerLifecycleOptions;
  /** How the upstreams' address guards resolve names: tests hand in a table; dns.lookup otherwise (not a config key). */
  resolver?: Resolver;
}

export interface RunningServer {
  port: number;
  host: string;
  store: LocalStore;
  proxy: ProxySource;
  /** "https" when serving TLS. */
  scheme: 'http' | 'https';
  /** Re-reads the TLS files and uses them for new connections; a pair that does not load keeps the old one. */
  reloadTls(): Promise<void>;
  /**
   * Takes the credential settings of each upstream still configured under the same host (a
   * re-read config, on SIGHUP); other changes to upstreams need a restart. Returns the hosts reloaded.
   */
  reloadUpstreamCredentials(upstreams: readonly UpstreamSettings[]): string[];
  /** One gc now (after any run in progress): what the schedule runs (SIGUSR2 in `wharf serve`). */
  runGc(options?: { graceMs?: number; dryRun?: boolean }): Promise<GcReport>;
  close(): Promise<void>;
}

const uploadCleanIntervalMs = 60 * 60 * 1000;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: options.logLevel });
  const tlsFiles = options.tls;
  const tlsPair = tlsFiles === undefined ? undefined : await loadTlsPair(tlsFiles);
  const lock = await lockDataDir(options.dataDir);
  let store: LocalStore;
  try {
    store = await LocalStore.open(options.dataDir, {
      uploadMaxAgeMs: options.uploadMaxAgeMs,
      uploadEmptyMaxAgeMs: options.uploads?.emptyMaxAgeMs,
      uploadLimits: {
        maxSessions: options.uploads?.maxSessions,
        maxSessionsPerClient: options.uploads?.maxSessionsPerClient,
      },
      verifyReads: options.verifyReads,
      onQuarantine: (result) => {
        const isMirrored = mirroredNameTest((options.upstreams ?? []).map((u) => u.host));
        const line = describeQuarantine(result, options.dataDir, isMirrored);
        const fields = { digest: result.digest, reason: result.reason, kind: line.kind };
        const where = result.foundBy === 'scrub' ? 'in the background scrub' : 'on read';
        if (line.kind === 'lost') logger.error(fields, `blob failed verification ${where}: ${line.text}`);
        else logger.warn(fields, `blob failed verification ${where}: ${line.text}`);
      },
      sparseManifests: options.sparseManifests,
      ...lifecycleStoreOptions(options.lifecycle, logger),
      recordReads: true,
    });
  } catch (error) {
    await lock.release();
    throw error;
  }
  const metrics = new WharfMetrics();
  const { router, clients } = createUpstreamRouter(
    options.upstreams ?? [],
    options.defaultUpstream,
    options.local ?? [],
    logger,
    metrics.observeUpstream,
    options.resolver,
  );
  const proxy = new ProxySource(store, router, {
    offline: options.offline ?? false,
    logger,
    maxConcurrentFills: options.maxConcurrentFills,
  });
  metrics.attach({
    fills: () => proxy.fills,
    storeUsage: () => store.health.currentUsage(),
    lifecycle: () => ({ ...store.lifecycle.stats, limitBytes: options.lifecycle?.maxSizeBytes }),
    scrub: () => lifecycle.scrubStats(),
  });
  const auth = createClientAuth(options.auth);
  warnAboutAccess(
    logger,
    auth,
    options.host,
    clients.filter(({ settings }) => isPrivateUpstream(settings)).map(({ settings }) => settings.host),
  );
  // Reads go through the mirror; writes (pushes) go to the store, to local names (or, by an admin,
  // to a mirrored name's canonical name).
  const app = createRegistryApp({
    source: proxy,
    sink: store,
    logger,
    auth,
    names: createNameResolver(router),
    requests: { accessLog: options.accessLog ?? true, observe: metrics.observeRequest },
    health: {
      metrics: () => metrics.render(),
      notReady: () => store.health.notReadyReason(),
      metricsPublic: options.metricsPublic,
    },
  });
  // getRequestListener rather than createAdaptorServer, which does not pass errorHandler on: a
  // request the adaptor cannot read (a backslash in the path, a bad Host) still gets an OCI body.
  const listener = getRequestListener(app.fetch, {
    errorHandler: () =>
      new Response(
        JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: 'malformed request target or Host header' }] }),
        {
          status: 400,
          headers: { 'Content-Type': 'application/json' },
        },
      ),
  });
  const limits: ConnectionLimits = {
    headerTimeoutMs: options.limits?.headerTimeoutMs ?? 30_000,
    idleTimeoutMs: options.limits?.idleTimeoutMs ?? 60_000,
    maxConnections: options.limits?.maxConnections ?? defaultMaxConnections(),
  };
  const limitOptions = serverLimitOptions(limits);
  // Assigned once the server exists (the guard watches its connections); no request comes before listen().
  let track: (incoming: IncomingMessage, outgoing: ServerResponse) => void = () => undefined;
  const handle = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    track(incoming, outgoing);
    void listener(incoming, outgoing);
  };
  const server =
    tlsPair === undefined
      ? createServer(limitOptions, handle)
      : createHttpsServer({ ...limitOptions, ...tlsPair }, handle);
  // Blob uploads can take as long as they take (requestTimeout 0): the guard closes only what stalls.
  server.requestTimeout = limitOptions.requestTimeout;
  server.headersTimeout = limitOptions.headersTimeout;
  server.keepAliveTimeout = limitOptions.keepAliveTimeout;
  const guard = guardConnections(server, limits, { secure: tlsPair !== undefined, logger });
  track = guard.track;
  const stopGuard = guard.stop;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // Not listening (address in use): leave the directory as free as it was found.
    stopGuard();
    store.close();
    await lock.release();
    throw error;
  }
  const address = server.address() as AddressInfo;

  const cleaner = setInterval(() => {
    store.cleanUploads().catch((error: unknown) => logger.warn({ err: error }, 'upload cleanup failed'));
  }, uploadCleanIntervalMs);
  cleaner.unref();
  const lifecycle = startLifecycle(store, options.lifecycle, logger);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(cleaner);
      await stopListening(server, options.shutdownGraceMs ?? 10_000);
      stopGuard();
      await proxy.settle();
      await lifecycle.stop();
      await Promise.all(clients.map(({ client }) => client.close()));
      store.close();
      await lock.release();
    })();
    return closing;
  };
  const reloadTls = async (): Promise<void> => {
    if (tlsFiles === undefined) return;
    try {
      const pair = await loadTlsPair(tlsFiles);
      if ('setSecureContext' in server) server.setSecureContext(pair);
      logger.info({ cert: tlsFiles.cert }, 'TLS certificate reloaded');
    } catch (error) {
      logger.error({ err: error }, 'TLS reload failed: keeping the certificate in use');
    }
  };
  const reloadUpstreamCredentials = (upstreams: readonly UpstreamSettings[]): string[] =>
    clients.flatMap(({ client }) => {
      const settings = upstreams.find((u) => u.host === client.host);
      if (settings === undefined) return [];
      client.reloadCredentials({
        username: settings.username,
        password: settings.password,
        token: settings.token,
        useDockerConfig: settings.dockerConfig,
      });
      return [client.host];
    });
  return {
    port: address.port,
    host: address.address,
    store,
    proxy,
    scheme: tlsPair === undefined ? 'http' : 'https',
    reloadTls,
    reloadUpstreamCredentials,
    runGc: (run) => lifecycle.runGc(run),
    close,
  };
}

/** How often idle keep-alive connections are swept while shutting down. */
const idleSweepMs = 100;

/**
 * close() refuses new connections; keep-alive connections that go idle after
 * that moment are swept on a short timer (Node closes only those idle at the
 * call), and whatever is still busy after the grace period is cut.
 */
function stopListening(server: Server | HttpsServer, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), idleSweepMs);
    const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
  });
}
