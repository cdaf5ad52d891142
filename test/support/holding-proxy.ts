/**
 * @module test/support/holding-proxy
 * A plain HTTP reverse proxy on 127.0.0.1 in front of one server, for client tests: it logs every
 * exchange (method, path, which Authorization scheme, status, challenge) and can hold chosen
 * responses for a while before the client gets them. The request itself goes through at once, so
 * the server answers in time; only the client's next request is pushed later. That is how a test
 * makes a real client's token expire between two requests of one pull. The Host header passes
 * through unchanged: a token realm the server derives from it points back at the proxy.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { withDeadline } from './run.js';

export interface ProxyExchange {
  method: string;
  path: string;
  /** `Basic`, `Bearer` or `-` when the request had no Authorization header. */
  authorization: string;
  status: number;
  wwwAuthenticate: string | undefined;
  userAgent: string | undefined;
  /** Date.now() when the server's answer arrived (a held one reaches the client holdMs later). */
  at: number;
  /** Whether the response was held (see HoldingProxyOptions.holdMs). */
  held: boolean;
}

export interface HoldingProxyOptions {
  /** The server behind the proxy, e.g. http://127.0.0.1:PORT. */
  target: string;
  /** How long to hold a response that `shouldHold` picks; default 0. */
  holdMs?: number;
  shouldHold?: (exchange: Omit<ProxyExchange, 'held' | 'at'>) => boolean;
}

export interface HoldingProxyHandle {
  /** 127.0.0.1:<port>, what clients are pointed at. */
  host: string;
  url: string;
  /** Every exchange so far, in the order the server answered. */
  exchanges(): ProxyExchange[];
  close(): Promise<void>;
}

function schemeOf(header: string | undefined): string {
  if (header === undefined || header === '') return '-';
  return header.split(' ')[0] ?? '-';
}

export async function startHoldingProxy(options: HoldingProxyOptions): Promise<HoldingProxyHandle> {
  const target = new URL(options.target);
  const log: ProxyExchange[] = [];
  const server: Server = createServer((incoming: IncomingMessage, outgoing) => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        const header = answer.headers['www-authenticate'];
        const exchange = {
          method: incoming.method ?? '',
          path: incoming.url ?? '',
          authorization: schemeOf(incoming.headers.authorization),
          status: answer.statusCode ?? 0,
          wwwAuthenticate: Array.isArray(header) ? header.join(', ') : header,
          userAgent: incoming.headers['user-agent'],
        };
        const held = (options.holdMs ?? 0) > 0 && options.shouldHold?.(exchange) === true;
        log.push({ ...exchange, at: Date.now(), held });
        const deliver = (): void => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        };
        // A held body stays in the socket buffers (manifests are small); the client sees nothing until then.
        if (held) void sleep(options.holdMs ?? 0).then(deliver);
        else deliver();
      },
    );
    upstream.on('error', () => outgoing.destroy());
    incoming.pipe(upstream);
  });
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    }),
    5_000,
    'holding proxy listening',
  );
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('holding proxy: no TCP address');
  const host = `127.0.0.1:${address.port}`;
  return {
    host,
    url: `http://${host}`,
    exchanges: () => [...log],
    async close() {
      server.closeAllConnections();
      await withDeadline(new Promise<void>((resolve) => server.close(() => resolve())), 5_000, 'holding proxy closing');
    },
  };
}
