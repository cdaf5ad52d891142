/**
 * @module registry/request-log
 * One record per request, filled in while it is answered and handed on once
 * its response is over (finished, or cut short): to the access log (one JSON
 * line at info) and to whoever watches (cli/ wires the metrics). The request
 * id is the client's `X-Request-Id` when it looks like one, else a new id,
 * and is echoed in the response. Cheap by design: two small objects per request,
 * a listener only where a response streams, nothing written when nothing watches
 * and the log is off.
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
 * Kept on the response itself, for the error path, which has only the response at hand (a WeakMap
 * entry per request cost more on the manifest hot path than the rest of the record).
 */
const recordKey = Symbol('wharf.requestRecord');
type RecordedResponse = ServerResponse & { [recordKey]?: Pending };

/**
 * A record not yet reported, with what its report needs. Answers written in one piece by
 * writeReply are reported by `replied` right after it; streamed ones (blob GETs) and answers
 * Hono writes (the token endpoint) by the response's 'close', the only moment their end is known.
 * A 'close' listener and its closure on every response cost about a fifth of the manifest
 * requests a second that wharf answers, so the common case does without one.
 */
interface Pending {
  record: RequestRecord;
  started: number;
  /** socket.bytesWritten when the request started; -1 where it is not read (see start). */
  written: number;
  onClose: boolean;
  reported: boolean;
  log: RequestLog;
}

/** The one 'close' listener every streamed response shares (no closure per request): `this` is the response. */
function reportOnClose(this: ServerResponse): void {
  (this as RecordedResponse)[recordKey]?.log.closed(this);
}

export class RequestLog {
  constructor(
    private readonly logger: Logger,
    private readonly options: RequestLogOptions,
  ) {}

  recordOf(outgoing: ServerResponse): RequestRecord | undefined {
    return (outgoing as RecordedResponse)[recordKey]?.record;
  }

  /**
   * Starts the record of a request. The caller sends `requestId` back in the response headers, and
   * calls `replied` once it wrote the answer; a streamed answer (route class blob) or one written by
   * Hono (`byHono`) is reported when the response closes instead.
   */
  start(incoming: IncomingMessage, outgoing: ServerResponse, route: RouteClass, byHono = false): RequestRecord {
    const offered = incoming.headers['x-request-id'];
    const requestId =
      typeof offered === 'string' && saneRequestId.test(offered)
        ? offered
        : `${idPrefix}-${(++idCounter).toString(36)}`;
    const socket = incoming.socket;
    const onClose = byHono || streamed.has(route);
    const pending: Pending = {
      record: {
        requestId,
        method: incoming.method ?? 'GET',
        route,
        status: 0,
        bytes: 0,
        durationMs: 0,
        client: socket.remoteAddress,
        completed: false,
      },
      started: performance.now(),
      // Reading bytesWritten walks the socket's write queue: only where a cut-short response is likely.
      written: onClose ? socket.bytesWritten : -1,
      onClose,
      reported: false,
      log: this,
    };
    (outgoing as RecordedResponse)[recordKey] = pending;
    // 'close' comes once per response: `on` spares the wrapper `once` makes.
    if (onClose) outgoing.on('close', reportOnClose);
    return pending.record;
  }

  /**
   * Reports a request whose answer writeReply has just handed to the socket (or one cut after its
   * headers went out): completed unless the client's connection is already gone.
   */
  replied(outgoing: ServerResponse): void {
    const pending = (outgoing as RecordedResponse)[recordKey];
    if (pending === undefined || pending.onClose || pending.reported) return;
    const socket = outgoing.socket;
    this.report(pending, outgoing, socket !== null && !socket.destroyed && !outgoing.destroyed);
  }

  /** The 'close' path (reportOnClose): completed only when the whole response went out. */
  closed(outgoing: ServerResponse): void {
    const pending = (outgoing as RecordedResponse)[recordKey];
    if (pending === undefined || pending.reported) return;
    this.report(pending, outgoing, outgoing.writableFinished);
  }

  private report(pending: Pending, outgoing: ServerResponse, completed: boolean): void {
    pending.reported = true;
    const record = pending.record;
    record.durationMs = Math.round((performance.now() - pending.started) * 1000) / 1000;
    record.status = outgoing.statusCode;
    record.completed = completed;
    if (!completed) {
      const socket = outgoing.socket ?? undefined;
      record.bytes =
        pending.written < 0 || socket === undefined ? 0 : Math.max(0, socket.bytesWritten - pending.written);
    } else if (record.status === 304) record.bytes = 0;
    else if (record.bytes === 0 && record.method !== 'HEAD') record.bytes = headerLength(outgoing);
    this.options.observe?.(record);
    if (!completed) this.logger.info(record, 'request cut short: the connection closed before the response ended');
    else if (this.options.accessLog) this.logger.info(record, 'request');
  }
}

/** A Content-Length set with setHeader (answers Hono wrote: the token endpoint, /metrics). */
function headerLength(outgoing: ServerResponse): number {
  const length = Number(outgoing.getHeader('content-length'));
  return Number.isSafeInteger(length) && length > 0 ? length : 0;
}
