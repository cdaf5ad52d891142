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
import { errorReply, jsonReply, writeReply, type RegistryDeps, type RegistryRequest, type Reply } from './http.js';
import { isClientGone } from './http.js';
import { listCatalog, listReferrers, listTags } from './listing-handlers.js';
import { deleteManifest, getManifest, putManifest } from './manifest-handlers.js';
import { parseRoutePath, type RoutePath } from './route-path.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './upload-handlers.js';

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
  };
}

export function createRegistryApp(deps: RegistryDeps): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();

  app.all('*', async (c) => {
    const req = toRequest(c);
    const route = parseRoutePath(req.path);
    if (route === undefined) {
      throw new OciError('UNSUPPORTED', 'no such endpoint', { status: 404, detail: { path: req.path.slice(0, 300) } });
    }
    const handler = handlerFor(route, req.method);
    if (handler === undefined) {
      throw new OciError('UNSUPPORTED', `${req.method} is not supported here`, {
        headers: { Allow: allowed[route.kind] },
      });
    }
    writeReply(req.outgoing, await handler(deps, req));
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
      return RESPONSE_ALREADY_SENT;
    }
    // A request body left unread must not stay on a keep-alive connection: the client's next request would queue behind it.
    if (!c.env.incoming.complete) outgoing.setHeader('Connection', 'close');
    const known = isOciError(error) ? error : isOutOfSpace(error) ? outOfSpace(error) : undefined;
    writeReply(outgoing, errorReply(known ?? new OciError('UNKNOWN', 'internal error', { cause: error })));
    return RESPONSE_ALREADY_SENT;
  });

  return app;
}
