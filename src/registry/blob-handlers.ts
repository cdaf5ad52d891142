/**
 * @module registry/blob-handlers
 * GET, HEAD and DELETE /v2/<name>/blobs/<digest> (spec end-2, end-10), with Range.
 */
import { pipeline } from 'node:stream/promises';
import { requireDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { parseByteRange } from '../oci/ranges.js';
import {
  apiVersionHeader,
  emptyReply,
  sent,
  type Reply,
  namespaceHeader,
  readOptions,
  repoName,
  requireSink,
  type RegistryDeps,
  type RegistryRequest,
} from './http.js';

export async function getBlob(
  deps: RegistryDeps,
  req: RegistryRequest,
  rawName: string,
  rawDigest: string,
): Promise<Reply> {
  const name = repoName(rawName);
  const digest = requireDigest(rawDigest);
  const options = readOptions(req);
  const blob = await deps.source.openBlob(name, digest, options);
  if (blob === undefined) throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { detail: { digest } });

  const headers: Record<string, string> = {
    ...apiVersionHeader,
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Accept-Ranges': 'bytes',
    // Content addressed: the bytes behind this URL never change.
    'Cache-Control': 'max-age=31536000',
    ...namespaceHeader(options),
  };
  const range = parseByteRange(req.header('range'), blob.size);
  if (range.kind === 'unsatisfiable') {
    throw new OciError('RANGE_INVALID', 'requested range not satisfiable', {
      status: 416,
      headers: { 'Content-Range': `bytes */${blob.size}` },
    });
  }
  const status = range.kind === 'partial' ? 206 : 200;
  if (range.kind === 'partial') {
    headers['Content-Range'] = `bytes ${range.range.start}-${range.range.end}/${blob.size}`;
    headers['Content-Length'] = String(range.range.end - range.range.start + 1);
  } else {
    headers['Content-Length'] = String(blob.size);
  }
  if (req.method === 'HEAD' || headers['Content-Length'] === '0') return { status, headers };

  // The first chunk is read before the status line, so a blob that cannot be read at all (a fill
  // that already failed) still gets a proper error answer rather than a cut connection.
  const body = blob.open(range.kind === 'partial' ? range.range : undefined)[Symbol.asyncIterator]();
  const first = await body.next();
  // Straight from the file to the socket: no web-stream layer on the hot path.
  req.outgoing.writeHead(status, headers);
  try {
    if (first.done !== true) req.outgoing.write(first.value);
    await pipeline(rest(body), req.outgoing);
  } catch (error) {
    // The status line is gone already; cutting the connection is the only honest signal left.
    req.outgoing.destroy();
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ERR_STREAM_PREMATURE_CLOSE') deps.logger.warn({ err: error, digest }, 'blob read failed mid-stream');
  }
  return sent;
}

export async function deleteBlob(deps: RegistryDeps, rawName: string, rawDigest: string): Promise<Reply> {
  const name = repoName(rawName);
  const digest = requireDigest(rawDigest);
  const deleted = await requireSink(deps).deleteBlob(name, digest);
  if (!deleted) throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { detail: { digest } });
  return emptyReply(202);
}

/** The rest of an iterator whose first value was taken already. */
async function* rest(iterator: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
}
