/**
 * @module archive/import-docker-archive
 * Reads a legacy `docker save` tar (docker ≤ 24, skopeo `docker-archive:`)
 * into a writer in one pass: `manifest.json` lists each image's config and
 * layers as paths, `<hex>.json` is a config, `<id>/layer.tar` an uncompressed
 * layer. manifest.json comes last (docker tars its directory in name order),
 * so layers stream into the writer as they come, hashed on the way; at the end
 * each layer's digest must equal its diff_id in the config (a flipped byte, a
 * compressed layer: refused), and wharf builds each image's Docker schema2
 * manifest (see docker-manifest.ts). Any refusal aborts the writer, which
 * leaves the target as it was.
 */
import { commitOrAbort } from './commit-or-abort.js';
import { digestOf, parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { OciError } from '../oci/errors.js';
import { formatImageRef } from '../oci/image-ref.js';
import type { BlobInfo } from '../oci/image-source.js';
import type { DigestingImageWriter } from '../oci/image-transfer.js';
import { maxManifestBytes } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';
import type { RepoName } from '../oci/reference.js';
import type { TransferListener } from '../oci/transfer-events.js';
import { dockerImageRefs } from './docker-names.js';
import { buildSchema2Manifest, dockerConfig, parseDiffIds, parseDockerManifestJson } from './docker-manifest.js';
import { readSmall } from './entry-stages.js';
import type { ImportLayoutResult } from './import-layout.js';
import { drain, type LayoutEntry } from './layout-entry.js';
import { requireSafePath } from './layout-path.js';

export interface ImportDockerArchiveOptions {
  /** Replaces every image's repository (tags kept); required for images without RepoTags. */
  name?: RepoName;
  label: string;
  onEvent?: TransferListener;
}

/** Configs are JSON, small in practice; 16 MiB bounds a hostile one. */
const maxConfigBytes = 16 * 1024 * 1024;
const maxLinkHops = 8;

interface ArchiveContent {
  /** Files written as they came (layers), by path, with the digest their bytes have. */
  files: Map<string, BlobInfo>;
  /** Top-level JSON files (configs), by path. */
  configs: Map<string, { digest: Digest; bytes: Uint8Array }>;
  /** Symlinks (docker links a layer seen twice to the first copy), resolved inside the archive. */
  links: Map<string, string>;
}

export async function importDockerArchive(
  entries: AsyncIterable<LayoutEntry>,
  writer: DigestingImageWriter,
  options: ImportDockerArchiveOptions,
): Promise<ImportLayoutResult> {
  return commitOrAbort(writer, (w) => readAndWrite(entries, w, options));
}

async function readAndWrite(
  entries: AsyncIterable<LayoutEntry>,
  writer: DigestingImageWriter,
  options: ImportDockerArchiveOptions,
): Promise<ImportLayoutResult> {
  const emit = options.onEvent ?? ((): void => undefined);
  const image = options.label;
  const content: ArchiveContent = { files: new Map(), configs: new Map(), links: new Map() };
  const result: ImportLayoutResult = { images: [], blobsWritten: 0, bytesWritten: 0 };
  let manifestJson: Uint8Array | undefined;
  for await (const entry of entries) {
    const segments = requireSafePath(entry.path);
    const path = segments.join('/');
    // Stryker disable next-line BlockStatement: a directory's body is empty in both readers (a tar's has size 0 and tar-stream skips an unread entry; dir-entries gives an empty generator), so not draining it changes nothing.
    if (entry.type === 'directory') {
      await drain(entry.body);
    } else if (entry.type === 'symlink') {
      content.links.set(path, resolveLink(segments, entry.linkTarget ?? ''));
      await drain(entry.body);
    } else if (entry.type !== 'file') {
      throw new OciError(
        'UNSUPPORTED',
        `entry ${JSON.stringify(entry.path)} is a ${entry.type}: only files, directories and symlinks are accepted`,
      );
    } else if (path === 'manifest.json') {
      manifestJson = await readSmall(entry.body, maxManifestBytes, 'manifest.json');
    } else if (path === 'repositories' || isV1Metadata(segments)) {
      await drain(entry.body);
    } else if (segments.length === 1 && path.endsWith('.json')) {
      const bytes = await readSmall(entry.body, maxConfigBytes, path);
      const digest = digestOf(bytes);
      const named = parseDigest(`sha256:${path.slice(0, -'.json'.length)}`);
      if (named !== undefined && named !== digest) {
        throw new OciError('DIGEST_INVALID', `${path}: content does not match its name (computed ${digest})`);
      }
      const seen = content.configs.get(path);
      if (seen !== undefined && seen.digest !== digest) {
        throw new OciError('DIGEST_INVALID', `duplicate entry ${path} with different bytes`);
      }
      content.configs.set(path, { digest, bytes });
      if (!(await writer.hasBlob(digest))) {
        await writer.writeBlob({ digest, size: bytes.byteLength }, once(bytes));
        result.blobsWritten++;
        result.bytesWritten += bytes.byteLength;
      }
    } else {
      const info = await writer.writeUnnamedBlob(entry.size, entry.body);
      const seen = content.files.get(path);
      if (seen !== undefined && seen.digest !== info.digest) {
        throw new OciError('DIGEST_INVALID', `duplicate entry ${path} with different bytes`);
      }
      content.files.set(path, info);
      // A layer the target held (a second import of the same tar) is hashed, not written: not counted.
      if (info.added) {
        result.blobsWritten++;
        result.bytesWritten += info.size;
      }
      emit({ type: 'blob-done', image, digest: info.digest, size: info.size });
    }
  }
  if (manifestJson === undefined) {
    throw new OciError('MANIFEST_UNKNOWN', `${options.label}: no manifest.json, not a docker-archive`);
  }
  for (const entry of parseDockerManifestJson(manifestJson)) {
    const config = content.configs.get(resolvePath(content, entry.config));
    if (config === undefined) {
      throw new OciError('MANIFEST_BLOB_UNKNOWN', `manifest.json names config ${entry.config}, which is missing`);
    }
    const diffIds = parseDiffIds(config.bytes, entry.config);
    if (diffIds.length !== entry.layers.length) {
      throw new OciError(
        'MANIFEST_INVALID',
        `${entry.config} lists ${diffIds.length} diff_ids, manifest.json ${entry.layers.length} layers`,
      );
    }
    const layers: Descriptor[] = entry.layers.map((layerPath, i) => {
      const layer = content.files.get(resolvePath(content, layerPath));
      if (layer === undefined) {
        throw new OciError('MANIFEST_BLOB_UNKNOWN', `manifest.json names layer ${layerPath}, which is missing`);
      }
      if (layer.digest !== diffIds[i]) {
        throw new OciError(
          'DIGEST_INVALID',
          `layer ${layerPath} hashes to ${layer.digest}, its config says ${diffIds[i]} (damaged, or a compressed layer)`,
        );
      }
      // Stryker disable next-line StringLiteral: buildSchema2Manifest writes dockerLayerTar for every layer and reads only size and digest; the total reads only size.
      return { mediaType: '', digest: layer.digest, size: layer.size };
    });
    const configDescriptor = { mediaType: dockerConfig, digest: config.digest, size: config.bytes.byteLength };
    const bytes = buildSchema2Manifest(configDescriptor, layers);
    const digest = digestOf(bytes);
    const total = layers.reduce((sum, l) => sum + l.size, config.bytes.byteLength);
    for (const ref of dockerImageRefs(entry.repoTags, digest, options.name)) {
      await writer.writeManifest(ref.name, {
        digest,
        mediaType: mediaTypes.dockerManifest,
        size: bytes.byteLength,
        bytes,
      });
      await writer.tag(ref.name, ref.reference, digest);
      result.images.push({ ref: formatImageRef(ref), digest });
      emit({ type: 'image-done', image: formatImageRef(ref), digest, bytes: total });
    }
  }
  return result;
}

/** `<id>/json` and `<id>/VERSION`: docker's v1 image metadata, not needed to serve the image. */
function isV1Metadata(segments: readonly string[]): boolean {
  return segments.length === 2 && (segments[1] === 'json' || segments[1] === 'VERSION');
}

/** A symlink's target as a path inside the archive; one that leaves it is refused. */
function resolveLink(segments: readonly string[], target: string): string {
  const joined = target.startsWith('/') ? target : [...segments.slice(0, -1), target].join('/');
  const out: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.pop() === undefined || target.startsWith('/')) {
      throw new OciError('NAME_INVALID', `symlink ${segments.join('/')} points outside the archive (${target})`);
    }
  }
  if (target.startsWith('/')) {
    throw new OciError('NAME_INVALID', `symlink ${segments.join('/')} points outside the archive (${target})`);
  }
  return out.join('/');
}

function resolvePath(content: ArchiveContent, raw: string): string {
  let path = requireSafePath(raw).join('/');
  for (let hops = 0; content.links.has(path); hops++) {
    if (hops >= maxLinkHops) throw new OciError('NAME_INVALID', `${raw}: too many symlinks`);
    path = content.links.get(path) ?? path;
  }
  return path;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
