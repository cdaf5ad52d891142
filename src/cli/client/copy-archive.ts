/**
 * @module cli/client/copy-archive
 * `wharf copy` with an archive at one end, through src/archive: a registry image written as an
 * OCI image layout tar (`oci-archive:`; `docker-archive:` gets the same tar, which carries
 * docker's manifest.json beside index.json, so `docker load` takes it), or an OCI layout (tar or
 * folder) or a docker-archive tar read into a registry repository, all verified while streaming.
 * A tar is written as `<file>.part`, fsynced and renamed when complete (archive/durable-output.ts); an `oci:<dir>` layout folder gets
 * each file through a temp name, and images are added to a layout already there.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { TempOutput, type OutputFs } from '../../archive/durable-output.js';
import { importArchive } from '../../archive/import-archive.js';
import { OciLayoutDirWriter } from '../../archive/oci-layout-dir-writer.js';
import { OciLayoutWriter } from '../../archive/oci-layout-writer.js';
import { readDirEntries } from '../../archive/dir-entries.js';
import { readTarEntries } from '../../archive/tar-entries.js';
import type { Platform } from '../../oci/descriptor.js';
import { parseDigest, type Digest } from '../../oci/digest.js';
import { defaultTag, formatDockerRef, refReference, type DockerRef } from '../../oci/docker-ref.js';
import { OciError } from '../../oci/errors.js';
import type { ImageRef } from '../../oci/image-ref.js';
import { parseRepoName, type Tag } from '../../oci/reference.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { RegistryImageReader } from '../../upstream/registry-image-reader.js';
import { RegistryImageWriter } from '../../upstream/registry-image-writer.js';
import { copyImages } from '../../transfer/copy-images.js';
import type { ProgressView } from '../transfer-progress.js';
import type { CopyResult } from './copy-command.js';
import type { CopyEnd } from './copy-ends.js';
import { platformMatches } from './platforms.js';

export async function copyToArchive(
  src: RegistryClient,
  from: DockerRef,
  to: Exclude<CopyEnd, { kind: 'registry' }>,
  platforms: Platform[] | undefined,
  view: ProgressView,
  referrers = false,
  /** The fs calls the output's durability rests on (archive/durable-output.ts); Node's when absent. */
  fs?: OutputFs,
): Promise<CopyResult> {
  const reference = refReference(from) ?? defaultTag;
  // The image keeps its full name in the layout (ref.name, and docker's RepoTags), as `wharf export`
  // writes it. A host with a port (`127.0.0.1:5000/team/run`) is no repository name, so the engine
  // carries the repository and the layout is told the full name (docker and skopeo read it; wharf
  // import gives it the mirror's form, `127.0.0.1-5000/team/run`).
  const full = `${from.registry}/${from.repository}`;
  const name = parseRepoName(full) ?? from.repository;
  // `oci:<dir>:<ref>` (skopeo's suffix) names the image as given.
  const given = to.refName;
  const options =
    given !== undefined
      ? { refName: () => given }
      : name === full
        ? {}
        : { refName: (ref: ImageRef) => fullRefName(full, ref.reference) };
  const file = to.kind === 'oci' ? undefined : new TempOutput(to.path, fs);
  const writer =
    file === undefined ? new OciLayoutDirWriter(to.path, options, fs) : new OciLayoutWriter(file.stream, options);
  try {
    const summary = await copyImages(
      new RegistryImageReader(src),
      writer,
      [{ from: { name: from.repository, reference }, to: { name, reference } }],
      {
        onEvent: view.onEvent,
        referrers,
        ...(platforms === undefined
          ? {}
          : { platforms: (p: Platform) => platforms.some((w) => platformMatches(w, p)) }),
      },
    );
    await file?.commit();
    return {
      source: formatDockerRef(from),
      destination: to.path,
      digest: summary.images[0]?.digest ?? ('' as Digest),
      blobsSent: summary.blobsSent,
      blobsPresent: summary.blobsSkipped,
      blobsMounted: 0,
      bytesSent: summary.bytes,
      referrers: summary.referrers,
      upToDate: false,
    };
  } catch (error) {
    await file?.discard();
    throw error;
  }
}

function fullRefName(full: string, reference: Tag | Digest): string {
  return parseDigest(reference) === undefined ? `${full}:${reference}` : `${full}@${reference}`;
}

export async function copyFromArchive(
  from: Exclude<CopyEnd, { kind: 'registry' }>,
  dst: RegistryClient,
  to: DockerRef,
  view: ProgressView,
): Promise<CopyResult> {
  const info = await stat(from.path);
  const entries = info.isDirectory()
    ? readDirEntries(from.path)
    : readTarEntries(createReadStream(from.path, { highWaterMark: 1024 * 1024 }));
  if (!info.isDirectory()) view.setTotal(info.size);
  if (to.digest !== undefined) throw new OciError('UNSUPPORTED', 'copy from an archive to name@digest: name a tag');
  const writer = new RegistryImageWriter(dst, to.repository, { tag: to.tag ?? defaultTag });
  const result = await importArchive(entries, writer, {
    name: to.repository,
    label: from.path,
    onEvent: view.onEvent,
    ...(from.refName === undefined ? {} : { only: from.refName }),
  });
  const tagged = writer.tagged[0];
  return {
    source: `${from.kind}:${from.path}${from.refName === undefined ? '' : `:${from.refName}`}`,
    destination: writer.tagged.length === 1 ? formatDockerRef(to) : `${to.registry}/${to.repository}`,
    digest: tagged?.digest ?? result.images[0]?.digest ?? ('' as Digest),
    blobsSent: result.blobsWritten,
    blobsPresent: writer.counts.blobsPresent,
    blobsMounted: 0,
    bytesSent: result.bytesWritten,
    referrers: 0,
    upToDate: false,
  };
}
