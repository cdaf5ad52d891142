/**
 * @module cli/connection-guard
 * Bounds what client connections can hold (issue 8, finding 7): a cap on open
 * connections (past it, new ones are closed at once while the open ones keep
 * being served), a deadline for request headers (and the TLS handshake), and an
 * idle deadline for a request whose body stopped coming or whose client stopped
 * reading. requestTimeout stays 0: an upload that keeps moving is never cut,
 * however long it takes, and a request the server itself is working on (hashing,
 * waiting for an upstream, which has its own timeouts) is never idle.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

export interface ConnectionLimits {
  /** From the connection (or the end of the previous request) to the end of the request headers. */
  headerTimeoutMs: number;
  /** A request that moves no byte this long while the server waits on its client is closed. */
  idleTimeoutMs: number;
  /** Open connections; the kernel's accept queue holds no more than its backlog beyond. */
  maxConnections: number;
}

/** Longer than the 60 s idle timeout of common load balancers, so they close first (no race on reuse). */
const keepAliveTimeoutMs = 65_000;
/** How often a rate-limited warning about refused connections may be logged. */
const dropWarnEveryMs = 60_000;

/** The http(s).createServer options for the deadlines Node enforces itself. */
export function serverLimitOptions(limits: ConnectionLimits): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
  handshakeTimeout: number;
} {
  return {
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: keepAliveTimeoutMs,
    // Node checks headersTimeout on this timer (30 s by default): a shorter one keeps it close to exact.
    connectionsCheckingInterval: clamp(Math.floor(limits.headerTimeoutMs / 4), 50, 5_000),
    handshakeTimeout: limits.headerTimeoutMs,
  };
}

interface Watch {
  socket: Socket;
  read: number;
  written: number;
  /** When a byte last moved either way. */
  movedAt: number;
  request?: { incoming: IncomingMessage; outgoing: ServerResponse };
}

/**
 * Applies the connection cap and starts the idle sweep. `secure` servers are
 * watched from their TLS sockets (the ones requests arrive on); the handshake
 * before that has its own timeout. Returns `track`, which the request handler
 * calls first with each request (cheaper than a second 'request' listener and a
 * 'close' listener per request, on the hottest path there is), and `stop`.
 */
export function guardConnections(
  server: Server | HttpsServer,
  limits: ConnectionLimits,
  options: { secure: boolean; logger: Logger },
): { track: (incoming: IncomingMessage, outgoing: ServerResponse) => void; stop: () => void } {
  server.maxConnections = limits.maxConnections;
  let lastDropWarning = 0;
  server.on('drop', () => {
    const now = Date.now();
    if (now - lastDropWarning < dropWarnEveryMs) return;
    lastDropWarning = now;
    options.logger.warn(
      { maxConnections: limits.maxConnections },
      'connection limit reached: refusing new connections',
    );
  });

  const watched = new Map<Socket, Watch>();
  server.on(options.secure ? 'secureConnection' : 'connection', (socket: Socket) => {
    watched.set(socket, { socket, read: 0, written: 0, movedAt: Date.now() });
    socket.once('close', () => watched.delete(socket));
  });
  const track = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    const watch = watched.get(incoming.socket);
    if (watch === undefined) return;
    watch.request = { incoming, outgoing };
    watch.movedAt = Date.now();
  };

  const sweep = (): void => {
    const now = Date.now();
    for (const watch of watched.values()) {
      const { bytesRead, bytesWritten } = watch.socket;
      if (bytesRead !== watch.read || bytesWritten !== watch.written) {
        watch.read = bytesRead;
        watch.written = bytesWritten;
        watch.movedAt = now;
      } else if (now - watch.movedAt >= limits.idleTimeoutMs && isWaitingOnClient(watch)) {
        options.logger.debug({ remote: watch.socket.remoteAddress }, 'closing an idle connection');
        watch.socket.destroy();
      }
    }
  };
  const timer = setInterval(sweep, clamp(Math.floor(limits.idleTimeoutMs / 4), 50, 5_000));
  timer.unref();
  return { track, stop: () => clearInterval(timer) };
}

/**
 * Whether the request in progress waits on its client: a body that has not all
 * arrived, or response bytes the client does not take. Between requests the
 * connection belongs to Node's keep-alive and header timeouts.
 */
function isWaitingOnClient(watch: Watch): boolean {
  const request = watch.request;
  if (request === undefined) return false;
  // Answered before its body came (a POST that opens a session): Node still reads the rest of the
  // body before the next request, so an incomplete body is waited on whatever the response did.
  if (!request.incoming.complete) return true;
  // A finished request leaves the connection to Node's keep-alive timeout.
  if (request.outgoing.writableFinished) return false;
  return request.outgoing.writableNeedDrain || watch.socket.writableLength > 0;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
