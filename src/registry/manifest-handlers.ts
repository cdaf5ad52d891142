/**
 * @module registry/manifest-handlers
 * GET, HEAD, PUT and DELETE /v2/<name>/manifests/<reference> (spec end-3, end-7, end-9).
 * Bytes are served exactly as stored, with the stored Content-Type.
 */
import { cacheStatusHeader } from './cache-status.js';
import { OciError } from '../oci/errors.js';
import type { ManifestInfo } from '../oci/image-source.js';
import { maxManifestBytes } from '../oci/manifest.js';
import { parseReference, parseTag, type Reference, type Tag } from '../oci/reference.js';
import {
  emptyReply,
  type Reply,
  namespaceHeader,
  readOptions,
  readSmallBody,
  repoName,
  requireSink,
  type RegistryDeps,
  type RegistryRequest,
} from './http.js';

function manifestUnknown(reference: string): OciError {
  return new OciError('MANIFEST_UNKNOWN', 'manifest unknown to registry', {
    detail: { reference: reference.slice(0, 200) },
  });
}

/** An unparseable reference on a read is simply not there: the conformance suite asks for 404, not 400. */
function readReference(raw: string): Reference {
  const reference = parseReference(raw);
  if (reference === undefined) throw manifestUnknown(raw);
  return reference;
}

function referenceValue(reference: Reference): string {
  return reference.kind === 'tag' ? reference.tag : reference.digest;
}

function manifestHeaders(info: ManifestInfo, extra: Record<string, string>): Record<string, string> {
  return {
    ...extra,
    'Content-Type': info.mediaType,
    'Content-Length': String(info.size),
    'Docker-Content-Digest': info.digest,
    ETag: `"${info.digest}"`,
  };
}

function isNotModified(req: RegistryRequest, info: ManifestInfo): boolean {
  const match = req.header('if-none-match');
  return match !== undefined && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === `"${info.digest}"`);
}

export async function getManifest(
  deps: RegistryDeps,
  req: RegistryRequest,
  rawName: string,
  raw: string,
): Promise<Reply> {
  const name = repoName(rawName);
  const reference = referenceValue(readReference(raw)) as Tag;
  const options = readOptions(req);
  const extra = (): Record<string, string> => ({ ...namespaceHeader(options), ...cacheStatusHeader(options.trace) });
  if (req.method === 'HEAD') {
    const info = await deps.source.statManifest(name, reference, options);
    if (info === undefined) throw manifestUnknown(raw);
    return { status: isNotModified(req, info) ? 304 : 200, headers: manifestHeaders(info, extra()) };
  }
  const manifest = await deps.source.getManifest(name, reference, options);
  if (manifest === undefined) throw manifestUnknown(raw);
  if (isNotModified(req, manifest)) return { status: 304, headers: manifestHeaders(manifest, extra()) };
  return { status: 200, headers: manifestHeaders(manifest, extra()), body: manifest.bytes };
}

export async function putManifest(
  deps: RegistryDeps,
  req: RegistryRequest,
  rawName: string,
  raw: string,
): Promise<Reply> {
  const name = repoName(rawName);
  const sink = requireSink(deps);
  const reference = parseReference(raw);
  if (reference === undefined) {
    throw raw.includes(':')
      ? new OciError('DIGEST_INVALID', 'invalid digest reference', { detail: { reference: raw.slice(0, 200) } })
      : new OciError('TAG_INVALID', 'invalid tag', { detail: { tag: raw.slice(0, 200) } });
  }
  // end-7b: PUT by digest with ?tag=… tags it in the same request.
  const extraTags = req.query.getAll('tag').map((value) => {
    const tag = parseTag(value);
    if (tag === undefined) throw new OciError('TAG_INVALID', 'invalid tag', { detail: { tag: value.slice(0, 200) } });
    return tag;
  });
  const bytes = await readSmallBody(req, maxManifestBytes);
  const result = await sink.putManifest(
    name,
    referenceValue(reference) as Tag,
    bytes,
    req.header('content-type'),
    extraTags,
  );
  const headers: Record<string, string> = {
    Location: `/v2/${name}/manifests/${result.digest}`,
    'Docker-Content-Digest': result.digest,
  };
  if (result.subject !== undefined) headers['OCI-Subject'] = result.subject;
  if (extraTags.length > 0) headers['OCI-Tag'] = extraTags.join(', ');
  return emptyReply(201, headers);
}

export async function deleteManifest(deps: RegistryDeps, rawName: string, raw: string): Promise<Reply> {
  const name = repoName(rawName);
  const reference = readReference(raw);
  const deleted = await requireSink(deps).deleteManifest(name, referenceValue(reference) as Tag);
  if (!deleted) throw manifestUnknown(raw);
  return emptyReply(202);
}
