/**
 * @module oci/descriptor
 * Descriptors (image-spec descriptor.md) and their validation.
 */
import { parseDigest, type Digest } from './digest.js';
import { OciError } from './errors.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseAnnotations(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === 'string') out[key] = entry;
  }
  return out;
}

/** Reads a descriptor out of manifest JSON; `where` names it in the error. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  const invalid = (why: string): OciError =>
    new OciError('MANIFEST_INVALID', `${where}: ${why}`, { detail: { descriptor: where } });
  if (!isRecord(value)) throw invalid('descriptor must be an object');
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid('mediaType is required');
  if (typeof digest !== 'string') throw invalid('digest is required');
  const parsed = parseDigest(digest);
  if (parsed === undefined) throw invalid(`invalid or unsupported digest ${JSON.stringify(digest.slice(0, 200))}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid('size must be a non-negative integer');
  }
  const descriptor: Descriptor = { mediaType, digest: parsed, size };
  if (Array.isArray(value.urls)) descriptor.urls = value.urls.filter((u): u is string => typeof u === 'string');
  const annotations = parseAnnotations(value.annotations);
  if (annotations !== undefined) descriptor.annotations = annotations;
  if (typeof value.artifactType === 'string') descriptor.artifactType = value.artifactType;
  if (isRecord(value.platform)) {
    const { architecture, os, variant } = value.platform;
    if (typeof architecture === 'string' && typeof os === 'string') {
      descriptor.platform = { architecture, os };
      if (typeof variant === 'string') descriptor.platform.variant = variant;
    }
  }
  return descriptor;
}
