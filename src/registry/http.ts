/**
 * @module registry/http
 * The request as the handlers see it, and the few response shapes they build.
 * Handlers read the Node request directly so that blob bodies stream from the
 * socket to the store without a web-stream copy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OciError } from '../oci/errors.js';
import type { Logger } from '../oci/logger.js';
import type { ImageSink, ImageSource, ReadOptions } from '../oci/image-source.js';
import { requireRepoName, type RepoName } from '../oci/reference.js';
import type { ClientAuth, Identity } from './auth/client-auth.js';
import type { NameResolver } from './auth/name-resolver.js';
import type { HealthChecks } from './health-routes.js';
import type { RequestLogOptions, RequestRecord } from './request-log.js';

export interface RegistryDeps {
  source: ImageSource;
  /** Absent on a read-only registry: every write is UNSUPPORTED. */
  sink?: ImageSink;
  logger: Logger;
  /** Client authentication and rights; default: no users, anyone may pull and push (local names only). */
  auth?: ClientAuth;
  /** Which names are mirrored (read-only, maybe private); default: every name is local. */
  names?: NameResolver;
  /** Access log and request metrics (request-log.ts); default: the access log on, nothing else watching. */
  requests?: RequestLogOptions;
  /** /metrics and /readyz (health-routes.ts); /healthz is always there. */
  health?: HealthChecks;
}

export interface RegistryRequest {
  method: string;
  /** The path as sent, not normalised. */
  path: string;
  query: URLSearchParams;
  incoming: IncomingMessage;
  outgoing: ServerResponse;
  header(name: string): string | undefined;
  /** Who sent it (set once authenticated). */
  identity: Identity;
  /** readOptions' answer, once it was asked. */
  options?: ReadOptions;
  /** The access log's record of this request; a mirror writes its cache result into it (the read trace). */
  record?: RequestRecord;
  /**
   * The store name of `name` when this client may pull it, else undefined: what
   * a mount may take from and what _catalog may list.
   */
  readable(name: RepoName): string | undefined;
}

export const apiVersionHeader = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

/**
 * What a handler answers: plain data, written to the socket in one place
 * (app.ts). `sent` means the handler streamed the response itself (blob GETs).
 * Handlers never build web Response objects: on the node-server adapter, touching
 * a Response's headers materialises a full web Response, which halves manifest throughput.
 */
export type Reply = { status: number; headers: Record<string, string>; body?: string | Uint8Array } | { sent: true };

export const sent: Reply = { sent: true };

export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

export function emptyReply(status: number, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'Content-Length': '0', ...headers } };
}

export function errorReply(error: OciError): Reply {
  return jsonReply(error.status, error.toBody(), error.headers);
}

/** Error codes of a connection the peer closed or reset: seen when writing to, or reading from, a client that left. */
const connectionGoneCodes: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
]);

/**
 * Whether a failure is only the client going away (a reset, a hang-up mid-body): routine for a
 * registry (a cancelled pull, a killed push), so it is logged at debug, with no stack. The socket
 * must be gone too, so a server fault that happens to carry such a code still shows.
 */
export function isClientGone(error: unknown, incoming: IncomingMessage): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && connectionGoneCodes.has(code) && incoming.socket?.destroyed !== false;
}

/**
 * Writes a reply with the API version header and the request id (noting the body's size in the record); Content-Length from the body unless given
 * (HEAD gives the real size). The id goes in with the other headers: one set before writeHead would send every
 * header down Node's slower merging path.
 */
export function writeReply(outgoing: ServerResponse, reply: Reply, record?: RequestRecord): void {
  if ('sent' in reply) return;
  const headers: Record<string, string> = { ...apiVersionHeader, ...reply.headers };
  if (record !== undefined) headers['X-Request-Id'] = record.requestId;
  if (reply.body !== undefined) {
    const length = typeof reply.body === 'string' ? Buffer.byteLength(reply.body) : reply.body.byteLength;
    headers['Content-Length'] ??= String(length);
    if (record !== undefined) record.bytes = length;
  }
  outgoing.writeHead(reply.status, headers);
  outgoing.end(reply.body);
}

export function requireSink(deps: RegistryDeps): ImageSink {
  if (deps.sink === undefined) throw new OciError('UNSUPPORTED', 'this registry is read-only');
  return deps.sink;
}

export function repoName(raw: string): RepoName {
  return requireRepoName(raw);
}

/** Whether the request carries a body at all (PUT may close an upload with or without one). */
export function hasBody(req: RegistryRequest): boolean {
  const length = req.header('content-length');
  if (length !== undefined) return Number(length) > 0;
  return req.header('transfer-encoding') !== undefined;
}

/** Reads a small body (a manifest) whole, refusing past maxBytes with 413. */
export async function readSmallBody(req: RegistryRequest, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.header('content-length') ?? '0');
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req.incoming as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(maxBytes: number): OciError {
  return new OciError('MANIFEST_INVALID', `manifest exceeds ${maxBytes} bytes`, { status: 413 });
}

/** `n` of tags/list and _catalog: a non-negative integer, or absent. */
export function parsePageSize(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,9}$/.test(value)) {
    throw new OciError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative integer', { detail: { n: value } });
  }
  return Number(value);
}

/**
 * The namespace (`?ns=`, spec "Registry Proxying") and the Accept set of a read.
 * Docker sends one Accept line per type and Node joins them with ", ": treat it as a set.
 */
export function readOptions(req: RegistryRequest): ReadOptions {
  // Authorization and the handler both need it: parsed once per request.
  if (req.options !== undefined) return req.options;
  const options: ReadOptions = {};
  if (req.record !== undefined) options.trace = req.record;
  const namespace = req.query.get('ns');
  if (namespace !== null && namespace !== '') options.namespace = requireRegistryHost(namespace);
  const accept = req.header('accept');
  if (accept !== undefined) {
    options.accept = accept
      .split(',')
      .map((part) => part.split(';', 1)[0]?.trim().toLowerCase() ?? '')
      .filter((type) => type !== '');
  }
  req.options = options;
  return options;
}

/**
 * A registry host as the reference grammar has it (distribution/reference: domain): DNS labels
 * or an IPv4 address, or a bracketed IPv6 address, and an optional port. ASCII only: a Unicode
 * character that lower-cases to ASCII (U+212A KELVIN SIGN → k) would otherwise match a configured
 * upstream and then be echoed raw into the OCI-Namespace header, which Node refuses (a 500).
 */
const registryHostPattern =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/i;

/** Longest host name DNS allows (RFC 1035), with room for a port. */
const maxRegistryHostLength = 253 + ':65535'.length;

function requireRegistryHost(value: string): string {
  if (value.length > maxRegistryHostLength || !registryHostPattern.test(value)) {
    // The value is not echoed: it is what was wrong, and the client sent it.
    throw new OciError(
      'NAME_INVALID',
      'ns must be a registry host: letters, digits, dots, dashes and an optional port',
    );
  }
  return value;
}

/** Echo of the namespace a read was scoped to (spec "Registry Proxying": OCI-Namespace). */
export function namespaceHeader(options: ReadOptions): Record<string, string> {
  return options.namespace === undefined ? {} : { 'OCI-Namespace': options.namespace };
}
