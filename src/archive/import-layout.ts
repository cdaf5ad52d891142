/**
 * @module archive/import-layout
 * Reads an OCI image layout in one pass (a tar stream, gzip'd or not, or a
 * directory, as entries) into an ImageWriter. Blob entries are verified against
 * their file name while they stream into the writer; `oci-layout`, `index.json`
 * and manifests are small and buffered (4 MiB cap each). At the end every
 * manifest index.json reaches must be here with all it names, else nothing is
 * kept. Any refusal aborts the writer, which leaves the target as it was.
 */
import { commitOrAbort } from './commit-or-abort.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { RepoName } from '../oci/reference.js';
import { OciError } from '../oci/errors.js';
import { formatImageRef } from '../oci/image-ref.js';
import type { ImageWriter } from '../oci/image-transfer.js';
import { maxManifestBytes, parseManifest } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';
import type { TransferListener } from '../oci/transfer-events.js';
import { verifyStream } from '../oci/verified-stream.js';
import { drain, type LayoutEntry } from './layout-entry.js';
import { parseLayoutPath, requireSafePath } from './layout-path.js';
import { countProgress } from '../oci/count-progress.js';
import { collectManifest, readSmall } from './entry-stages.js';
import { writeImageTree, type LayoutContent } from './write-image-tree.js';
import { refNameAnnotation } from './layout-names.js';
import { pickRefName, type NameMapper } from './ref-names.js';

export interface ImportLayoutOptions {
  names: NameMapper;
  /** Names the source in events and errors (a file name, `-`). */
  label: string;
  onEvent?: TransferListener;
  /** Only the image whose index.json entry has exactly this ref.name (and its referrers). */
  only?: string | undefined;
}

export interface ImportLayoutResult {
  images: { ref: string; digest: Digest }[];
  blobsWritten: number;
  bytesWritten: number;
}

export async function importLayout(
  entries: AsyncIterable<LayoutEntry>,
  writer: ImageWriter,
  options: ImportLayoutOptions,
): Promise<ImportLayoutResult> {
  return commitOrAbort(writer, (w) => readAndWrite(entries, w, options));
}

async function readAndWrite(
  entries: AsyncIterable<LayoutEntry>,
  writer: ImageWriter,
  options: ImportLayoutOptions,
): Promise<ImportLayoutResult> {
  const emit = options.onEvent ?? ((): void => undefined);
  const image = options.label;
  const content: LayoutContent = { blobs: new Map(), manifests: new Map() };
  const result: ImportLayoutResult = { images: [], blobsWritten: 0, bytesWritten: 0 };
  let indexBytes: Uint8Array | undefined;
  for await (const entry of entries) {
    requireSafePath(entry.path);
    if (entry.type === 'directory') {
      await drain(entry.body);
      continue;
    }
    if (entry.type !== 'file') {
      throw new OciError(
        'UNSUPPORTED',
        `entry ${JSON.stringify(entry.path)} is a ${entry.type}: only regular files are accepted`,
      );
    }
    const where = parseLayoutPath(entry.path);
    if (where.kind === 'layout') {
      checkLayoutVersion(await readSmall(entry.body, 64 * 1024, 'oci-layout'));
    } else if (where.kind === 'index') {
      indexBytes = await readSmall(entry.body, maxManifestBytes, 'index.json');
    } else if (where.kind === 'blob') {
      const { digest } = where;
      const target = { digest, size: entry.size, label: entry.path };
      const seen = content.blobs.get(digest);
      if (seen !== undefined) {
        // Named by its digest, a true duplicate has the same bytes: verify and move on.
        try {
          await drain(verifyStream(entry.body, target));
        } catch (error) {
          throw new OciError('DIGEST_INVALID', `duplicate blob entry ${entry.path} with different bytes`, {
            cause: error,
          });
        }
        continue;
      }
      emit({ type: 'blob-start', image, digest, size: entry.size });
      const counted = countProgress(entry.body, (done) =>
        emit({ type: 'blob-progress', image, digest, size: entry.size, done }),
      );
      const keep = (bytes: Uint8Array): void => void content.manifests.set(digest, bytes);
      if (await writer.hasBlob(digest)) {
        // Held already (verified when it was written): these bytes are read past, not hashed. A manifest
        // among them is kept for the tree, and writeManifest checks its digest before using it.
        await drain(collectManifest(counted, entry.size, keep));
        emit({ type: 'blob-skipped', image, digest, size: entry.size });
      } else {
        // Hashed once: by the writer when it verifies as it writes (the store), else here.
        const checked = writer.verifiesBlobs === true ? counted : verifyStream(counted, target);
        await writer
          .writeBlob({ digest, size: entry.size }, collectManifest(checked, entry.size, keep))
          .catch((error: unknown) => {
            throw relabel(error, entry.path);
          });
        result.blobsWritten++;
        result.bytesWritten += entry.size;
        emit({ type: 'blob-done', image, digest, size: entry.size });
      }
      content.blobs.set(digest, entry.size);
    } else {
      await drain(entry.body);
    }
  }
  if (indexBytes === undefined) {
    throw new OciError('MANIFEST_UNKNOWN', `${options.label}: no index.json, not a complete OCI image layout`);
  }
  const index = parseManifest(indexBytes, mediaTypes.ociIndex);
  if (index.kind !== 'index') {
    // Stryker disable next-line StringLiteral: cannot fire: parseManifest, told the index type, refuses a body of another mediaType itself (layout-import-mutants.test.ts).
    throw new OciError('MANIFEST_INVALID', 'index.json is not an image index');
  }
  const placed = new Map<Digest, RepoName>();
  const referrers: Descriptor[] = [];
  const only = options.only;
  if (only !== undefined && !index.references.some((d) => d.annotations?.[refNameAnnotation] === only)) {
    throw new OciError('MANIFEST_UNKNOWN', `${options.label}: index.json names no image ${JSON.stringify(only)}`);
  }
  for (const root of index.references) {
    const refName = pickRefName(root.annotations);
    // An entry without a name whose manifest has a subject is a referrer: it goes where its subject goes.
    if (refName === undefined && hasSubject(content, root)) {
      referrers.push(root);
      continue;
    }
    // With one image picked by its ref.name (as given, not normalised), every other image is left out.
    if (only !== undefined && root.annotations?.[refNameAnnotation] !== only) continue;
    const ref = options.names(refName, root.digest, root.annotations);
    const bytes = await writeImageTree(writer, ref.name, root, content, 0, placed);
    await writer.tag(ref.name, ref.reference, root.digest);
    result.images.push({ ref: formatImageRef(ref), digest: root.digest });
    emit({ type: 'image-done', image: formatImageRef(ref), digest: root.digest, bytes });
  }
  // Referrers of an image left out are left out with it.
  await writeReferrers(writer, referrers, content, placed, only === undefined ? options.names : undefined);
  return result;
}

/** The store's digest mismatch, named by the archive entry it came from (as verifyStream names it). */
function relabel(error: unknown, path: string): unknown {
  if (!(error instanceof OciError) || error.code !== 'DIGEST_INVALID') return error;
  const computed = (error.detail as { computed?: string } | undefined)?.computed;
  return new OciError('DIGEST_INVALID', `${path}: content does not match its digest (computed ${computed})`, {
    detail: error.detail,
    cause: error,
  });
}

function hasSubject(content: LayoutContent, descriptor: Descriptor): boolean {
  const bytes = content.manifests.get(descriptor.digest);
  return bytes !== undefined && parseManifest(bytes, descriptor.mediaType).subject !== undefined;
}

/**
 * Writes each referrer under the repository its subject went to; a referrer of a
 * referrer waits for that one. One whose subject is in no image of the layout
 * needs --name (the mapper says so).
 */
async function writeReferrers(
  writer: ImageWriter,
  referrers: Descriptor[],
  content: LayoutContent,
  placed: Map<Digest, RepoName>,
  /** Where a referrer whose subject is not placed goes; undefined: nowhere (left out). */
  names: NameMapper | undefined,
): Promise<void> {
  let pending = referrers;
  while (pending.length > 0) {
    const waiting: Descriptor[] = [];
    for (const referrer of pending) {
      const bytes = content.manifests.get(referrer.digest);
      const subject = bytes === undefined ? undefined : parseManifest(bytes, referrer.mediaType).subject;
      const name = subject === undefined ? undefined : placed.get(subject.digest);
      if (name === undefined) waiting.push(referrer);
      else await writeImageTree(writer, name, referrer, content, 0, placed);
    }
    if (waiting.length === pending.length) {
      if (names === undefined) return;
      for (const referrer of waiting) {
        await writeImageTree(writer, names(undefined, referrer.digest).name, referrer, content, 0, placed);
      }
      return;
    }
    pending = waiting;
  }
}

function checkLayoutVersion(bytes: Uint8Array): void {
  let version: unknown;
  try {
    version = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch (error) {
    throw new OciError('MANIFEST_INVALID', 'oci-layout is not valid JSON', { cause: error });
  }
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw new OciError('UNSUPPORTED', `oci-layout: unsupported imageLayoutVersion ${JSON.stringify(version)}`);
  }
}
