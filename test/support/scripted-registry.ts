/**
 * @module test/support/scripted-registry
 * A loopback HTTP server whose answers a test scripts, path by path, to play an upstream registry
 * (or its token service, or its CDN) that misbehaves on cue: 401 challenges, 429, 5xx, redirects to
 * another server, a stall before the first byte, a reset mid-body, wrong bytes. It records every
 * request (method, url, headers, body) so a test can count requests and inspect what was sent.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { withDeadline } from './run.js';

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface ScriptContext {
  /** http://127.0.0.1:<port> of this server, for realms and redirects pointing back at it. */
  url: string;
  host: string;
  request: RecordedRequest;
  /** Requests to this path so far, this one included: 1 on the first. */
  count: number;
}

export type ScriptedHandler = (req: IncomingMessage, res: ServerResponse, ctx: ScriptContext) => void | Promise<void>;

/** One handler for everything, or handlers by exact path (query ignored); other paths answer 404. */
export type Script = ScriptedHandler | Record<string, ScriptedHandler>;

export interface ScriptedRegistry {
  /** http://127.0.0.1:<port> (http://[::1]:<port> on IPv6), no trailing slash */
  url: string;
  /** 127.0.0.1:<port> ([::1]:<port>) */
  host: string;
  /** Every request received, in order of arrival. */
  requests: RecordedRequest[];
  requestsTo(path: string): RecordedRequest[];
  /** TCP connections accepted so far: shows whether a client reused its keep-alive connection. */
  connections(): number;
  /** Stops listening and destroys open connections (stalled ones included). */
  close(): Promise<void>;
}

/** Request bodies are token forms and small pushes; the cap keeps a runaway client from filling memory. */
const maxRecordedBodyBytes = 16 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= maxRecordedBodyBytes) chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface ScriptedRegistryOptions {
  /** The loopback address to listen on: '127.0.0.1' (the default) or '::1'. */
  address?: '127.0.0.1' | '::1';
  /** Serve https with this key and certificate (PEM) instead of plain http. */
  tls?: { key: string; cert: string };
}

export async function startScriptedRegistry(
  script: Script,
  options: ScriptedRegistryOptions = {},
): Promise<ScriptedRegistry> {
  const address = options.address ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  let connections = 0;
  let base = '';
  let host = '';
  const handlerFor = (path: string): ScriptedHandler | undefined =>
    typeof script === 'function' ? script : script[path];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const parsed = new URL(req.url ?? '/', base);
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        path: parsed.pathname,
        query: parsed.searchParams,
        headers: req.headers,
        body: await readBody(req),
      };
      requests.push(recorded);
      const count = requests.filter((r) => r.path === recorded.path).length;
      const handler = handlerFor(recorded.path);
      if (handler === undefined) return sendError(res, 404, 'NAME_UNKNOWN', `no script for ${recorded.path}`);
      await handler(req, res, { url: base, host, request: recorded, count });
    })().catch((error: unknown) => {
      // A broken script shows up as a 500 (or a cut connection) and in the test output, never as a hang.
      console.error('scripted registry handler failed:', error);
      if (!res.headersSent) sendError(res, 500, 'UNKNOWN', 'scripted handler failed');
      else res.destroy();
    });
  };
  const server = options.tls === undefined ? createServer(handle) : createTlsServer(options.tls, handle);
  // For https, count the TLS connections (what a client reuses), not the TCP ones underneath.
  server.on(options.tls === undefined ? 'connection' : 'secureConnection', () => connections++);
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    }),
    5_000,
    'scripted registry listening',
  );
  const { port } = server.address() as AddressInfo;
  host = address === '::1' ? `[::1]:${port}` : `${address}:${port}`;
  base = `${options.tls === undefined ? 'http' : 'https'}://${host}`;
  return {
    url: base,
    host,
    requests,
    requestsTo: (path) => requests.filter((r) => r.path === path),
    connections: () => connections,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await withDeadline(closed, 5_000, `scripted registry ${host} closing`);
    },
  };
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Bytes with Content-Length (no body on a HEAD: node drops it). */
export function sendBytes(
  res: ServerResponse,
  bytes: Uint8Array | string,
  headers: Record<string, string> = {},
  status = 200,
): void {
  res.writeHead(status, { 'Content-Length': String(Buffer.byteLength(bytes)), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendBytes(res, JSON.stringify(body), { 'Content-Type': 'application/json', ...headers }, status);
}

/** An OCI error body (spec §Error Codes). */
export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message = code.toLowerCase(),
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { errors: [{ code, message }] }, headers);
}

/** A manifest with its Content-Type and a Docker-Content-Digest (the sha256 of the bytes unless given; null for none). */
export function sendManifest(
  res: ServerResponse,
  bytes: Uint8Array | string,
  mediaType: string,
  digest: string | null = sha256(bytes),
): void {
  sendBytes(res, bytes, { 'Content-Type': mediaType, ...(digest === null ? {} : { 'Docker-Content-Digest': digest }) });
}

export function sendBearerChallenge(
  res: ServerResponse,
  params: { realm: string; service?: string; scope?: string },
): void {
  const fields = Object.entries(params).map(([key, value]) => `${key}="${value}"`);
  sendError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'WWW-Authenticate': `Bearer ${fields.join(',')}` });
}

export function sendBasicChallenge(res: ServerResponse, realm = 'scripted'): void {
  sendError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'WWW-Authenticate': `Basic realm="${realm}"` });
}

/** A token service's answer; expiresIn omitted means no expires_in field. */
export function sendToken(res: ServerResponse, token: string, expiresIn?: number): void {
  sendJson(res, 200, { token, access_token: token, ...(expiresIn === undefined ? {} : { expires_in: expiresIn }) });
}

export function sendTooManyRequests(res: ServerResponse, retryAfter: string): void {
  sendError(res, 429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit.', { 'Retry-After': retryAfter });
}

export function sendServerError(res: ServerResponse, status = 500): void {
  sendError(res, status, 'UNKNOWN', 'scripted failure');
}

export function sendRedirect(res: ServerResponse, location: string, status = 307): void {
  sendBytes(res, '', { Location: location }, status);
}

/** Never answers: the client must give up on its own. close() ends the connection. */
export function stallBeforeHeaders(_res: ServerResponse): void {}

/** Sends headers announcing all of `bytes`, then `sent` bytes of them, then nothing more. */
export function stallMidBody(res: ServerResponse, bytes: Uint8Array, sent: number): void {
  res.writeHead(200, { 'Content-Length': String(bytes.byteLength) });
  res.write(bytes.subarray(0, sent));
}

/** Sends headers announcing all of `bytes`, then `sent` bytes of them, then resets the connection. */
export function resetMidBody(res: ServerResponse, bytes: Uint8Array, sent: number): void {
  res.writeHead(200, { 'Content-Length': String(bytes.byteLength) });
  // Destroy once the part is flushed, so the client sees headers and some body before the reset.
  res.write(bytes.subarray(0, sent), () => setTimeout(() => res.socket?.destroy(), 20));
}

/** The Basic credentials a request carried, decoded: 'user:pass'. */
export function basicCredentials(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ') !== true) return undefined;
  return Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
}
