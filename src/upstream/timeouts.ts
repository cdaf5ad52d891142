/**
 * @module upstream/timeouts
 * How long the upstream layer waits for each phase of a request. Every phase has a limit:
 * a stalled upstream must turn into an error the proxy can act on (serve stale, answer 503),
 * never into a client hanging behind a hung socket.
 */

export interface UpstreamTimeouts {
  connectMs: number;
  headersMs: number;
  bodyIdleMs: number;
}

/** TCP + TLS handshake. A healthy registry or CDN answers in well under a second; 5 s covers a slow
 * path across continents while still failing over quickly when the host is down or blackholed. */
export const defaultConnectMs = 5_000;

/** Request sent → response headers. Registries compute some answers (a large tags/list, a manifest
 * behind a cold cache, a token issued by a busy auth service) before sending the first byte;
 * 30 s lets those through and still bounds a server that accepted the request and went silent. */
export const defaultHeadersMs = 30_000;

/** Longest silence between two body chunks (undici's bodyTimeout). It is an idle limit, not a total:
 * a multi-gigabyte layer may take many minutes, but a CDN that stops sending for 30 s is stuck. */
export const defaultBodyIdleMs = 30_000;

export function resolveTimeouts(partial: Partial<UpstreamTimeouts> = {}): UpstreamTimeouts {
  return {
    connectMs: partial.connectMs ?? defaultConnectMs,
    headersMs: partial.headersMs ?? defaultHeadersMs,
    bodyIdleMs: partial.bodyIdleMs ?? defaultBodyIdleMs,
  };
}
