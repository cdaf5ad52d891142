/**
 * @module store/image-listing
 * What `wharf ls` shows: every tagged image, and every manifest no tag, index
 * or subject reaches (pulled or pushed by digest), per repository, with its
 * media type kind, the platforms it has here (and those an index lists but the
 * store lacks: a sparse index), the bytes it holds and where its tag came from.
 * Read-only: queries and small reads of manifest and config files.
 */
import type { Descriptor, Platform } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { manifestKindOf } from '../oci/media-types.js';
import { parseManifest } from '../oci/manifest.js';
import type { BlobFiles } from './blob-files.js';
import type { Db } from './database.js';
import type { TagSource } from './store-index.js';

export interface ImageListing {
  repository: string;
  tag: string | undefined;
  digest: Digest;
  mediaType: string;
  kind: 'index' | 'manifest' | 'other';
  /** Platforms present here: `linux/amd64`, `linux/arm64/v8`. */
  platforms: string[];
  /** Platforms the index lists that the store does not hold. */
  missingPlatforms: string[];
  /** Manifests and the blobs they name that are here, each counted once. */
  size: number;
  source: TagSource | undefined;
  updatedAt: number | undefined;
  /** The last pull of the image or one of its platforms (unix ms; batched, up to 30 s late), undefined: never pulled. */
  lastPulledAt: number | undefined;
}

interface RootRow {
  repository_id: number;
  repository: string;
  tag: string | null;
  digest: string;
  media_type: string;
  size: number;
  source: TagSource | null;
  updated_at: number | null;
}

const rootsSql = `
  SELECT r.id AS repository_id, r.name AS repository, t.name AS tag, m.digest, m.media_type, m.size,
         t.source, t.updated_at
  FROM manifests m JOIN repositories r ON r.id = m.repository_id
  LEFT JOIN tags t ON t.repository_id = m.repository_id AND t.digest = m.digest
  WHERE t.name IS NOT NULL OR (m.subject IS NULL AND NOT EXISTS (
    SELECT 1 FROM manifest_references x WHERE x.repository_id = m.repository_id AND x.digest = m.digest))
  ORDER BY r.name, t.name IS NULL, t.name, m.digest`;

export async function listImages(
  db: Db,
  files: BlobFiles,
  match: (repository: string) => boolean,
): Promise<ImageListing[]> {
  const manifest = db.prepare<[number, string], { media_type: string; size: number }>(
    'SELECT media_type, size FROM manifests WHERE repository_id = ? AND digest = ?',
  );
  const blobs = db.prepare<[number, string], { digest: string; size: number }>(
    `SELECT b.digest, b.size FROM manifest_references x JOIN blobs b ON b.digest = x.digest
     WHERE x.repository_id = ? AND x.manifest_digest = ?`,
  );
  const accessed = db.prepare<[string], { accessed_at: number | null }>(
    'SELECT accessed_at FROM blobs WHERE digest = ?',
  );
  const out: ImageListing[] = [];
  for (const row of db.prepare<[], RootRow>(rootsSql).all()) {
    if (!match(row.repository)) continue;
    const kind = manifestKindOf(row.media_type);
    const counted = new Map<string, number>([[row.digest, row.size]]);
    const platforms: string[] = [];
    const missingPlatforms: string[] = [];
    // Stryker disable next-line ArrayDeclaration: only lastPulledAt reads it, and an entry no blob row has gives accessed_at undefined, which lastOf drops.
    const childDigests: string[] = [];
    const addImage = (digest: string): void => {
      for (const blob of blobs.all(row.repository_id, digest)) counted.set(blob.digest, blob.size);
    };
    if (kind === 'index') {
      for (const child of await childrenOf(files, row.digest as Digest, row.media_type)) {
        // Attestation manifests (buildkit's unknown/unknown) are not platforms.
        if (child.platform?.os === 'unknown') continue;
        const present = manifest.get(row.repository_id, child.digest);
        const name = child.platform === undefined ? child.digest.slice(0, 19) : formatPlatform(child.platform);
        if (present === undefined) {
          missingPlatforms.push(name);
          continue;
        }
        platforms.push(name);
        childDigests.push(child.digest);
        counted.set(child.digest, present.size);
        addImage(child.digest);
      }
    } else if (kind === 'image') {
      addImage(row.digest);
      const platform = await configPlatform(files, row.digest as Digest, row.media_type);
      if (platform !== undefined) platforms.push(platform);
    }
    out.push({
      repository: row.repository,
      tag: row.tag ?? undefined,
      digest: row.digest as Digest,
      mediaType: row.media_type,
      kind: kind === 'index' ? 'index' : kind === 'image' ? 'manifest' : 'other',
      platforms: [...new Set(platforms)],
      missingPlatforms,
      size: [...counted.values()].reduce((sum, size) => sum + size, 0),
      source: row.source ?? undefined,
      updatedAt: row.updated_at ?? undefined,
      lastPulledAt: lastOf([row.digest, ...childDigests].map((d) => accessed.get(d)?.accessed_at ?? undefined)),
    });
  }
  return out;
}

function lastOf(times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => t !== undefined);
  return known.length === 0 ? undefined : Math.max(...known);
}

async function childrenOf(files: BlobFiles, digest: Digest, mediaType: string): Promise<Descriptor[]> {
  try {
    return parseManifest(await files.readAll(digest), mediaType).references;
  } catch {
    return [];
  }
}

/** A single image's platform, from its config (`os`, `architecture`, `variant`); undefined for artifacts. */
async function configPlatform(files: BlobFiles, digest: Digest, mediaType: string): Promise<string | undefined> {
  try {
    const config = parseManifest(await files.readAll(digest), mediaType).references[0];
    if (config === undefined || config.size > 4 * 1024 * 1024) return undefined;
    const parsed = JSON.parse((await files.readAll(config.digest)).toString('utf8')) as Partial<Platform>;
    if (typeof parsed.os !== 'string' || typeof parsed.architecture !== 'string') return undefined;
    return formatPlatform({ os: parsed.os, architecture: parsed.architecture, variant: parsed.variant });
  } catch {
    // A manifest or config that cannot be read names no platform: undefined, as for an artifact.
  }
  return undefined;
}

export function formatPlatform(platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant === undefined || platform.variant === '' ? base : `${base}/${platform.variant}`;
}
