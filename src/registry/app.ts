/**
 * @module registry/app
 * The HTTP surface: one Hono app answering the distribution API under /v2/.
 * Routing reads the raw path (see route-path.ts), dispatches on endpoint and
 * method, and turns every OciError into the spec's JSON error body.
 */
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { OciError, isOciError, isOutOfSpace, outOfSpace } from '../oci/errors.js';
import { deleteBlob, getBlob } from './blob-handlers.js';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import {
  errorReply,
  jsonReply,
  readOptions,
  writeReply,
  type RegistryDeps,
  type RegistryRequest,
  type Reply,
} from './http.js';
import { isClientGone } from './http.js';
import { listCatalog, listReferrers, listTags } from './listing-handlers.js';
import { deleteManifest, getManifest, putManifest } from './manifest-handlers.js';
import { parseRoutePath, type RoutePath } from './route-path.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './upload-handlers.js';
import type { TLSSocket } from 'node:tls';
import { AccessPolicy, defaultRules, type Action } from './auth/access-policy.js';
import { ClientAuth, type ChallengeContext, type Identity } from './auth/client-auth.js';
import { LoginLimiter } from './auth/login-limiter.js';
import { localNames, type NameResolver } from './auth/name-resolver.js';
import { tokenHandler } from './auth/token-endpoint.js';
import { TokenIssuer } from './auth/tokens.js';
import { UserTable } from './auth/user-table.js';
import { requireRepoName, type RepoName } from '../oci/reference.js';
import { addHealthRoutes } from './health-routes.js';
import { RequestLog, type RequestRecord, type RouteClass } from './request-log.js';
import { userOf } from './auth/client-auth.js';

type Handler = (deps: RegistryDeps, req: RegistryRequest) => Promise<Reply>;

/** The methods each endpoint answers; anything else is 405 UNSUPPORTED with an Allow header. */
function handlerFor(route: RoutePath, method: string): Handler | undefined {
  const read = method === 'GET' || method === 'HEAD';
  switch (route.kind) {
    case 'base':
      return read ? async () => jsonReply(200, {}) : undefined;
    case 'catalog':
      return read ? (deps, req) => listCatalog(deps, req) : undefined;
    case 'blob':
      if (read) return (deps, req) => getBlob(deps, req, route.name, route.digest);
      return method === 'DELETE' ? (deps) => deleteBlob(deps, route.name, route.digest) : undefined;
    case 'uploads':
      return method === 'POST' ? (deps, req) => startUpload(deps, req, route.name) : undefined;
    case 'upload':
      if (method === 'GET') return (deps) => uploadStatus(deps, route.name, route.id);
      if (method === 'PATCH') return (deps, req) => patchUpload(deps, req, route.name, route.id);
      if (method === 'PUT') return (deps, req) => finishUpload(deps, req, route.name, route.id);
      return method === 'DELETE' ? (deps) => cancelUpload(deps, route.name, route.id) : undefined;
    case 'manifest':
      if (read) return (deps, req) => getManifest(deps, req, route.name, route.reference);
      if (method === 'PUT') return (deps, req) => putManifest(deps, req, route.name, route.reference);
      return method === 'DELETE' ? (deps) => deleteManifest(deps, route.name, route.reference) : undefined;
    case 'tags':
      return read ? (deps, req) => listTags(deps, req, route.name) : undefined;
    case 'referrers':
      return read ? (deps, req) => listReferrers(deps, req, route.name, route.digest) : undefined;
  }
}

const allowed: Record<RoutePath['kind'], string> = {
  base: 'GET, HEAD',
  catalog: 'GET, HEAD',
  blob: 'GET, HEAD, DELETE',
  uploads: 'POST',
  upload: 'GET, PATCH, PUT, DELETE',
  manifest: 'GET, HEAD, PUT, DELETE',
  tags: 'GET, HEAD',
  referrers: 'GET, HEAD',
};

const routeClass: Record<RoutePath['kind'], RouteClass> = {
  base: 'base',
  catalog: 'catalog',
  blob: 'blob',
  uploads: 'upload',
  upload: 'upload',
  manifest: 'manifest',
  tags: 'tags',
  referrers: 'referrers',
};

/** Repository and reference for the access log, as the client sent them (no repository on base and catalog). */
function describeRoute(record: RequestRecord, route: RoutePath): void {
  if (route.kind === 'base' || route.kind === 'catalog') return;
  record.repository = route.name;
  if (route.kind === 'manifest') record.reference = route.reference;
  else if (route.kind === 'blob' || route.kind === 'referrers') record.reference = route.digest;
}

function toRequest(c: Context<{ Bindings: HttpBindings }>): RegistryRequest {
  const { incoming, outgoing } = c.env;
  const raw = incoming.url ?? '/';
  const q = raw.indexOf('?');
  return {
    method: incoming.method ?? 'GET',
    path: q === -1 ? raw : raw.slice(0, q),
    query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)),
    incoming,
    outgoing,
    header: (name) => {
      const value = incoming.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    identity: { kind: 'anonymous' },
    readable: () => undefined,
  };
}

/** What a request to a repository needs, by endpoint and method (the handler table above decides which exist). */
function neededActions(route: RoutePath, method: string): Action[] {
  const read = method === 'GET' || method === 'HEAD';
  switch (route.kind) {
    case 'uploads':
    case 'upload':
      return ['push'];
    case 'blob':
    case 'manifest':
      return read ? ['pull'] : method === 'DELETE' ? ['delete'] : ['push'];
    default:
      return ['pull'];
  }
}

/** Without users in the config: nobody signs in, anonymous clients get the ecosystem's default rights. */
export function createOpenAuth(): ClientAuth {
  return new ClientAuth({
    users: new UserTable(new Map()),
    policy: new AccessPolicy(defaultRules(false)),
    tokens: new TokenIssuer('wharf', 300),
    limiter: new LoginLimiter(),
  });
}

export function createRegistryApp(deps: RegistryDeps): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  const auth = deps.auth ?? createOpenAuth();
  const names = deps.names ?? localNames;

  const requests = new RequestLog(deps.logger, deps.requests ?? { accessLog: true });

  const token = tokenHandler(auth, names);
  const loggedToken = (c: Context<{ Bindings: HttpBindings }>): Promise<Response> => {
    const { requestId } = requests.start(c.env.incoming, c.env.outgoing, 'token', true);
    // Hono writes this answer: a header set ahead is merged in.
    c.env.outgoing.setHeader('X-Request-Id', requestId);
    return token(c);
  };
  app.get('/token', loggedToken);
  app.post('/token', loggedToken);
  addHealthRoutes(app, deps.health ?? {}, auth);

  app.all('*', async (c) => {
    const req = toRequest(c);
    const route = parseRoutePath(req.path);
    req.record = requests.start(req.incoming, req.outgoing, route === undefined ? 'other' : routeClass[route.kind]);
    if (route !== undefined) describeRoute(req.record, route);
    if (route === undefined) {
      throw new OciError('UNSUPPORTED', 'no such endpoint', { status: 404, detail: { path: req.path.slice(0, 300) } });
    }
    const handler = handlerFor(route, req.method);
    if (handler === undefined) {
      throw new OciError('UNSUPPORTED', `${req.method} is not supported here`, {
        headers: { Allow: allowed[route.kind] },
      });
    }
    await authorizeRequest(auth, names, req, route);
    writeReply(req.outgoing, await handler(deps, req), req.record);
    requests.replied(req.outgoing);
    return RESPONSE_ALREADY_SENT;
  });

  app.onError((error, c) => {
    const { outgoing } = c.env;
    if (isClientGone(error, c.env.incoming)) {
      deps.logger.debug({ method: c.req.method, path: c.env.incoming.url, reason: error.message }, 'client went away');
    } else if (!isOciError(error)) {
      deps.logger.error({ err: error, method: c.req.method, path: c.env.incoming.url }, 'request failed');
    }
    // A failure after the status line went out (a blob stream) can only be told by cutting the connection.
    if (outgoing.headersSent) {
      outgoing.destroy();
      requests.replied(outgoing);
      return RESPONSE_ALREADY_SENT;
    }
    // A request body left unread must not stay on a keep-alive connection: the client's next request would queue behind it.
    if (!c.env.incoming.complete) outgoing.setHeader('Connection', 'close');
    const known = isOciError(error) ? error : isOutOfSpace(error) ? outOfSpace(error) : undefined;
    writeReply(
      outgoing,
      errorReply(known ?? new OciError('UNKNOWN', 'internal error', { cause: error })),
      requests.recordOf(outgoing),
    );
    requests.replied(outgoing);
    return RESPONSE_ALREADY_SENT;
  });

  return app;
}

/**
 * Authenticates the request and checks its rights before any handler runs. A
 * write that an admin makes to a mirrored name goes to the store under the
 * canonical name the mirror reads, so it is what every client then pulls.
 */
async function authorizeRequest(
  auth: ClientAuth,
  names: NameResolver,
  req: RegistryRequest,
  route: RoutePath,
): Promise<void> {
  const context: ChallengeContext = {
    host: req.header('host'),
    secure: (req.incoming.socket as TLSSocket | undefined)?.encrypted === true,
  };
  const authorization = req.header('authorization');
  // Most requests carry no credentials: no promise to wait for, no peer address to look up.
  const identity: Identity =
    authorization === undefined
      ? { kind: 'anonymous' }
      : await auth.identify(authorization, () => req.incoming.socket?.remoteAddress ?? 'unknown', context);
  req.identity = identity;
  if (req.record !== undefined) req.record.user = userOf(identity);
  req.readable = (name: RepoName) => {
    try {
      const cls = names.classify(name);
      return auth.rights(identity, cls).has('pull') ? cls.storeName : undefined;
    } catch {
      return undefined;
    }
  };
  if (route.kind === 'base') {
    auth.requireSignInForBase(identity, context);
    return;
  }
  if (route.kind === 'catalog') return;
  const name = requireRepoName(route.name);
  const cls = names.classify(name, readOptions(req).namespace);
  const needed = neededActions(route, req.method);
  auth.authorize(identity, cls, name, needed, context);
  if (cls.mirrored && (needed.includes('push') || needed.includes('delete'))) {
    // Only an admin gets here (authorize refused everyone else): write where the mirror reads.
    // The handler closures read route.name when they run, after this.
    route.name = cls.storeName;
  }
}
