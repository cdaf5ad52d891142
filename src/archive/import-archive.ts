/**
 * @module archive/import-archive
 * One entry point for every archive `wharf import` reads: an OCI image layout
 * (wharf's exports, skopeo `oci-archive:`, newer docker's `docker save`, which
 * carries index.json) or a legacy docker-archive (`<id>/layer.tar` and
 * manifest.json). Told apart by the first file entry, so the tar is still
 * read once: a layout starts with `blobs/`, `oci-layout` or `index.json`
 * (docker and wharf write them in name order, and `blobs/` sorts first).
 */
import { OciError } from '../oci/errors.js';
import type { DigestingImageWriter } from '../oci/image-transfer.js';
import type { RepoName } from '../oci/reference.js';
import type { TransferListener } from '../oci/transfer-events.js';
import { importDockerArchive } from './import-docker-archive.js';
import { importLayout, type ImportLayoutResult } from './import-layout.js';
import { drain, type LayoutEntry } from './layout-entry.js';
import { requireSafePath } from './layout-path.js';
import { indexFile, layoutFile } from './layout-names.js';
import { createNameMapper } from './ref-names.js';

export interface ImportArchiveOptions {
  name?: RepoName;
  /** The target's `local` patterns: a plain layout name they match stays local (see ref-names.ts). */
  isLocal?: (name: string) => boolean;
  label: string;
  onEvent?: TransferListener;
  /** Only the OCI layout's image whose ref.name is exactly this (skopeo's `oci:<dir>:<ref>`); refused for a docker save tar. */
  only?: string;
}

export async function importArchive(
  entries: AsyncIterable<LayoutEntry>,
  writer: DigestingImageWriter,
  options: ImportArchiveOptions,
): Promise<ImportLayoutResult> {
  const iterator = entries[Symbol.asyncIterator]();
  const before: LayoutEntry[] = [];
  let first: LayoutEntry | undefined;
  try {
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
      requireSafePath(next.value.path);
      if (next.value.type !== 'directory') {
        first = next.value;
        break;
      }
      await drain(next.value.body);
      before.push({ ...next.value, body: emptyBody() });
    }
  } catch (error) {
    await writer.abort(error);
    throw error;
  }
  async function* replay(): AsyncGenerator<LayoutEntry> {
    yield* before;
    if (first === undefined) return;
    yield first;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
  }
  if (first === undefined || startsLayout(requireSafePath(first.path).join('/'))) {
    return importLayout(replay(), writer, {
      names: createNameMapper({ name: options.name, isLocal: options.isLocal }),
      label: options.label,
      onEvent: options.onEvent,
      only: options.only,
    });
  }
  if (options.only !== undefined) {
    const error = new OciError(
      'UNSUPPORTED',
      `${options.label}: a docker save tar, whose images have no ref.name to pick ${JSON.stringify(options.only)} by`,
    );
    await writer.abort(error);
    throw error;
  }
  return importDockerArchive(replay(), writer, options);
}

/** Whether an archive whose first file is at `path` is an OCI layout (else a docker save tar). */
function startsLayout(path: string): boolean {
  return path.startsWith('blobs/') || path === layoutFile || path === indexFile;
}

/** A directory's body, already drained. */
// Stryker disable next-line BlockStatement: a directory's body is only ever drained (import-layout, import-docker-archive), never read: empty or not, it is thrown away.
async function* emptyBody(): AsyncGenerator<Uint8Array> {
  // Stryker disable next-line ArrayDeclaration: as above, what a directory's body yields is drained unread.
  yield* [];
}
