/**
 * @module registry/request-log
 * One record per request, filled in while it is answered and handed on once
 * its response is over (finished, or cut short): to the access log (one JSON
 * line at info) and to whoever watches (cli/ wires the metrics). The request
 * id is the client's `X-Request-Id` when it looks like one, else a new UUID,
 * and is echoed in the response. Cheap by design: one object and one listener
 * per request, no work at all when nothing watches and the log is off.
 */
import { randomBytes } from 'node:crypto';
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
  /**
   * Body bytes sent, as the writer announced them (writeReply, the blob handlers); for a blob response cut
   * short, what the socket took (headers included); 0 for other responses cut short.
   */
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

/**
 * Ids made here: a random prefix per process and a counter, unique across restarts and a fraction of
 * the cost of a UUID per request.
 */
const idPrefix = randomBytes(6).toString('hex');
let idCounter = 0;

/** Route classes whose responses are long enough to be cut short, for which bytes sent are counted from the socket. */
const streamed: ReadonlySet<RouteClass> = new Set(['blob']);

/**
 * For the error path, which has only the response at hand: kept on the response itself (a WeakMap
 * entry per request cost more on the manifest hot path than the rest of the record).
 */
const recordKey = Symbol('wharf.requestRecord');
type RecordedResponse = ServerResponse & { [recordKey]?: RequestRecord };

export class RequestLog {
  constructor(
    private readonly logger: Logger,
    private readonly options: RequestLogOptions,
  ) {}

  recordOf(outgoing: ServerResponse): RequestRecord | undefined {
    return (outgoing as RecordedResponse)[recordKey];
  }

  /**
   * Starts the record of a request; it is reported when the response closes. The caller sends
   * `requestId` back in the response headers.
   */
  start(incoming: IncomingMessage, outgoing: ServerResponse, route: RouteClass): RequestRecord {
    const started = performance.now();
    const offered = incoming.headers['x-request-id'];
    const requestId =
      typeof offered === 'string' && saneRequestId.test(offered)
        ? offered
        : `${idPrefix}-${(++idCounter).toString(36)}`;
    const socket = incoming.socket;
    // Reading bytesWritten walks the socket's write queue: only where a cut-short response is likely.
    const written = streamed.has(route) ? socket.bytesWritten : -1;
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
    // 'close' comes once per response: `on` spares the wrapper `once` makes.
    outgoing.on('close', () => {
      record.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      record.status = outgoing.statusCode;
      record.completed = outgoing.writableFinished;
      if (!record.completed) record.bytes = written < 0 ? 0 : Math.max(0, socket.bytesWritten - written);
      else if (record.status === 304) record.bytes = 0;
      else if (record.bytes === 0 && record.method !== 'HEAD') record.bytes = headerLength(outgoing);
      this.options.observe?.(record);
      if (!record.completed)
        this.logger.info(record, 'request cut short: the connection closed before the response ended');
      else if (this.options.accessLog) this.logger.info(record, 'request');
    });
    (outgoing as RecordedResponse)[recordKey] = record;
    return record;
  }
}

/** A Content-Length set with setHeader (answers Hono wrote: the token endpoint, /metrics). */
function headerLength(outgoing: ServerResponse): number {
  const length = Number(outgoing.getHeader('content-length'));
  return Number.isSafeInteger(length) && length > 0 ? length : 0;
}
