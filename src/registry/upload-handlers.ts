/**
 * @module registry/upload-handlers
 * Blob uploads (spec end-4a/4b/4c, end-5, end-6, end-11, end-13, end-14):
 * POST (new session, single-POST monolithic, cross-repository mount), PATCH
 * (streamed or chunked with Content-Range), PUT to close, GET status, DELETE.
 */
import { isDigestAlgorithm, requireDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { ChunkRange, UploadState } from '../oci/image-source.js';
import { formatUploadRange, parseChunkRange } from '../oci/ranges.js';
import { requireRepoName, type RepoName } from '../oci/reference.js';
import {
  emptyReply,
  hasBody,
  type Reply,
  repoName,
  requireSink,
  type RegistryDeps,
  type RegistryRequest,
} from './http.js';

function uploadHeaders(state: UploadState): Record<string, string> {
  return {
    Location: `/v2/${state.name}/blobs/uploads/${state.id}`,
    Range: formatUploadRange(state.size),
    'Docker-Upload-UUID': state.id,
  };
}

function blobCreated(name: RepoName, digest: string): Reply {
  return emptyReply(201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
}

function chunkRange(req: RegistryRequest): ChunkRange | undefined {
  const range = parseChunkRange(req.header('content-range'));
  if (range === 'invalid') {
    throw new OciError('BLOB_UPLOAD_INVALID', 'Content-Range must be <start>-<end>', {
      detail: { 'Content-Range': req.header('content-range') },
    });
  }
  return range;
}

function declaredLength(req: RegistryRequest): number | undefined {
  const value = req.header('content-length');
  return value === undefined ? undefined : Number(value);
}

export async function startUpload(deps: RegistryDeps, req: RegistryRequest, rawName: string): Promise<Reply> {
  const name = repoName(rawName);
  const sink = requireSink(deps);
  const mount = req.query.get('mount');
  if (mount !== null) {
    const from = req.query.get('from');
    const digest = requireDigest(mount);
    // A client mounts only what it could pull: from a named repository it may read, or, without
    // `from` (automatic content discovery), from any repository it may read.
    const source = from === null ? undefined : req.readable(requireRepoName(from));
    const mounted =
      from === null
        ? await sink.mountBlob(name, digest, (candidate) => req.readable(candidate) === candidate)
        : source === undefined
          ? undefined
          : await sink.mountBlob(name, digest, requireRepoName(source));
    if (mounted !== undefined) return blobCreated(name, digest);
    // Not mountable (or not readable by this client): the spec's answer is an ordinary upload session.
  }
  const digestParam = req.query.get('digest');
  if (digestParam !== null && mount === null) {
    const digest = requireDigest(digestParam);
    const info = await sink.putBlob(name, digest, req.incoming, declaredLength(req));
    return blobCreated(name, info.digest);
  }
  const algorithm = req.query.get('digest-algorithm');
  if (algorithm !== null && !isDigestAlgorithm(algorithm)) {
    throw new OciError('DIGEST_INVALID', 'unsupported digest algorithm (sha256 and sha512 are)', {
      detail: { 'digest-algorithm': algorithm },
    });
  }
  // The per-client cap on open sessions counts by the connection's address.
  const state = await sink.startUpload(name, req.incoming.socket.remoteAddress);
  return emptyReply(202, uploadHeaders(state));
}

export async function patchUpload(
  deps: RegistryDeps,
  req: RegistryRequest,
  rawName: string,
  id: string,
): Promise<Reply> {
  const name = repoName(rawName);
  const state = await requireSink(deps).appendUpload(name, id, req.incoming, chunkRange(req));
  return emptyReply(202, uploadHeaders(state));
}

export async function finishUpload(
  deps: RegistryDeps,
  req: RegistryRequest,
  rawName: string,
  id: string,
): Promise<Reply> {
  const name = repoName(rawName);
  const digest = requireDigest(req.query.get('digest'));
  const body = hasBody(req) ? req.incoming : undefined;
  const info = await requireSink(deps).finishUpload(name, id, digest, body, chunkRange(req));
  return blobCreated(name, info.digest);
}

export async function uploadStatus(deps: RegistryDeps, rawName: string, id: string): Promise<Reply> {
  const name = repoName(rawName);
  const state = await requireSink(deps).getUpload(name, id);
  if (state === undefined) throw uploadUnknown(id);
  return emptyReply(204, uploadHeaders(state));
}

export async function cancelUpload(deps: RegistryDeps, rawName: string, id: string): Promise<Reply> {
  const name = repoName(rawName);
  if (!(await requireSink(deps).cancelUpload(name, id))) throw uploadUnknown(id);
  return emptyReply(204);
}

function uploadUnknown(id: string): OciError {
  return new OciError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { detail: { id } });
}
