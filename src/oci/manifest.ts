/**
 * @module oci/manifest
 * Reading a manifest's bytes into what the registry needs to know about it:
 * its media type, the descriptors it depends on, its subject and artifact type.
 * The bytes themselves are never re-serialised (spec: "MUST store the manifest
 * in the exact byte representation provided by the client").
 */
import { isRecord, parseAnnotations, parseDescriptor, type Descriptor } from './descriptor.js';
import { OciError } from './errors.js';
import { manifestKindOf, mediaTypes, stripMediaTypeParameters, type ManifestKind } from './media-types.js';

/**
 * 4 MiB: the spec asks registries to accept at least 4 megabytes; containerd
 * refuses anything over 4 * 1048 * 1048 bytes, so more would not be pullable.
 */
export const maxManifestBytes = 4 * 1024 * 1024;

export interface ParsedManifest {
  mediaType: string;
  kind: ManifestKind;
  /** Image: config then layers. Index: child manifests. Schema1: nothing checked. */
  references: Descriptor[];
  subject?: Descriptor;
  /** artifactType, else (image manifests only) config.mediaType: what referrers report. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string): OciError {
  return new OciError('MANIFEST_INVALID', message);
}

function guessMediaType(body: Record<string, unknown>): string {
  if (body.schemaVersion === 1) return mediaTypes.dockerSchema1Signed;
  if (Array.isArray(body.manifests)) return mediaTypes.ociIndex;
  return mediaTypes.ociManifest;
}

/**
 * Resolves the media type from the Content-Type header and the body's own
 * mediaType field, refusing a contradiction between them.
 */
function resolveMediaType(contentType: string | undefined, body: Record<string, unknown>): string {
  const header = stripMediaTypeParameters(contentType);
  const headerType = header !== undefined && manifestKindOf(header) !== undefined ? header : undefined;
  const field = body.mediaType;
  if (field !== undefined && typeof field !== 'string') throw invalid('mediaType must be a string');
  if (field !== undefined && headerType !== undefined && field !== headerType) {
    throw invalid(`Content-Type ${headerType} does not match the manifest's mediaType ${field}`);
  }
  const mediaType = field ?? headerType ?? guessMediaType(body);
  if (manifestKindOf(mediaType) === undefined) throw invalid(`unsupported manifest media type ${mediaType}`);
  return mediaType;
}

export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    throw new OciError('MANIFEST_INVALID', 'manifest is not valid JSON', { cause: error });
  }
  if (!isRecord(body)) throw invalid('manifest must be a JSON object');
  const mediaType = resolveMediaType(contentType, body);
  const kind = manifestKindOf(mediaType) as ManifestKind;
  if (kind === 'schema1') {
    if (body.schemaVersion !== 1) throw invalid('schema1 manifest must have schemaVersion 1');
    return { mediaType, kind, references: [] };
  }
  if (body.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  const parsed: ParsedManifest = { mediaType, kind, references: [] };
  if (kind === 'image') {
    const config = parseDescriptor(body.config, 'config');
    if (body.layers !== undefined && !Array.isArray(body.layers)) throw invalid('layers must be an array');
    const layers = ((body.layers as unknown[] | undefined) ?? []).map((l, i) => parseDescriptor(l, `layers[${i}]`));
    parsed.references = [config, ...layers];
    const artifactType = typeof body.artifactType === 'string' ? body.artifactType : config.mediaType;
    parsed.artifactType = artifactType;
  } else {
    if (!Array.isArray(body.manifests)) throw invalid('manifests must be an array');
    parsed.references = body.manifests.map((m, i) => parseDescriptor(m, `manifests[${i}]`));
    if (typeof body.artifactType === 'string') parsed.artifactType = body.artifactType;
  }
  if (body.subject !== undefined) parsed.subject = parseDescriptor(body.subject, 'subject');
  const annotations = parseAnnotations(body.annotations);
  if (annotations !== undefined) parsed.annotations = annotations;
  return parsed;
}
