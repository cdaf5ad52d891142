/**
 * @module registry/request-log
 * One record per request, filled in while it is answered and handed on once
 * its response is over (finished, or cut short): to the access log (one JSON
 * line at info) and to whoever watches (cli/ wires the metrics). The request
 * id is the client's `X-Request-Id` when it looks like one, else a new UUID,
 * and is echoed in the response. Cheap by design: one object and one listener
 * per request, no work at all when nothing watches and the log is off.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../oci/logger.js';
import type { ReadTrace } from '../oci/read-trace.js';

export const routeClasses = [
  'base',
  'catalog',
  'blob',
  'upload',
  'manifest',
  'tags',
  'referrers',
  'token',
  'other',
] as const;
export type RouteClass = (typeof routeClasses)[number];

export interface RequestRecord extends ReadTrace {
  requestId: string;
  method: string;
  route: RouteClass;
  /** The repository name as the client sent it. */
  repository?: string;
  /** Tag or digest (manifests), digest (blobs). */
  reference?: string;
  status: number;
  /** Body bytes sent; for a response cut short, what the socket took (headers included). */
  bytes: number;
  durationMs: number;
  client: string | undefined;
  /** The signed-in user; never a credential. */
  user?: string;
  /** false when the response did not finish: the client left, or the connection was cut after a failure. */
  completed: boolean;
}

export type RequestObserver = (record: Readonly<RequestRecord>) => void;

export interface RequestLogOptions {
  /** One info line per request (log.access); a response cut short is logged either way. */
  accessLog: boolean;
  /** Told of every finished request (metrics). */
  observe?: RequestObserver;
}

/** What a client may send as its request id: a UUID, a trace id, a short token; nothing to escape in a header or a log. */
const saneRequestId = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export class RequestLog {
  constructor(
    private readonly logger: Logger,
    private readonly options: RequestLogOptions,
  ) {}

  /** Starts the record of a request; it is reported when the response closes. */
  start(incoming: IncomingMessage, outgoing: ServerResponse, route: RouteClass): RequestRecord {
    const started = performance.now();
    const offered = incoming.headers['x-request-id'];
    const requestId = typeof offered === 'string' && saneRequestId.test(offered) ? offered : randomUUID();
    outgoing.setHeader('X-Request-Id', requestId);
    const socket = incoming.socket;
    const written = socket.bytesWritten;
    const record: RequestRecord = {
      requestId,
      method: incoming.method ?? 'GET',
      route,
      status: 0,
      bytes: 0,
      durationMs: 0,
      client: socket.remoteAddress,
      completed: false,
    };
    outgoing.once('close', () => {
      record.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      record.status = outgoing.statusCode;
      record.completed = outgoing.writableFinished;
      record.bytes = record.completed ? bodyBytes(record, outgoing) : Math.max(0, socket.bytesWritten - written);
      this.options.observe?.(record);
      if (!record.completed) this.logger.info(record, 'request cut short: the connection closed before the response ended');
      else if (this.options.accessLog) this.logger.info(record, 'request');
    });
    return record;
  }
}

/** The body of a finished response: its Content-Length, except where none is sent (HEAD, 204, 304). */
function bodyBytes(record: RequestRecord, outgoing: ServerResponse): number {
  if (record.method === 'HEAD' || record.status === 204 || record.status === 304) return 0;
  const length = Number(outgoing.getHeader('content-length'));
  return Number.isSafeInteger(length) && length > 0 ? length : 0;
}
