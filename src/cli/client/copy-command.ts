/**
 * @module cli/client/copy-command
 * `wharf copy <src> <dst>`: one image (all platforms, or those of --platform) from a registry to
 * a registry, through the transfer engine: every blob verified while it streams, blobs the target
 * has not sent (HEAD first), blobs of another repository on the same registry mounted, manifests
 * byte for byte (digests kept), tags moved last. Either end may instead be an archive
 * (copy-archive.ts). With --referrers, signatures and SBOMs follow their subject.
 */
import type { Platform } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { defaultTag, formatDockerRef, refReference, type DockerRef } from '../../oci/docker-ref.js';
import type { ImageRef } from '../../oci/image-ref.js';
import { OciError } from '../../oci/errors.js';
import type { RepoName } from '../../oci/reference.js';
import { parseManifest } from '../../oci/manifest.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { RegistryImageReader } from '../../upstream/registry-image-reader.js';
import { RegistryImageWriter } from '../../upstream/registry-image-writer.js';
import { headManifest, listReferrers } from '../../upstream/registry-reads.js';
import { copyImages, type CopyRequest } from '../../transfer/copy-images.js';
import { formatBytes } from '../format-bytes.js';
import { createProgressView, progressMode, type ProgressView } from '../transfer-progress.js';
import { withClients, writeJson, type Env, type RegistryFlags } from './client-context.js';
import type { OutputFs } from '../../archive/durable-output.js';
import { copyFromArchive, copyToArchive } from './copy-archive.js';
import { parseCopyEnd } from './copy-ends.js';
import { requireManifest } from './inspect-commands.js';
import { parsePlatforms, pickPlatform, platformMatches } from './platforms.js';

export interface CopyFlags extends RegistryFlags {
  platform?: string;
  referrers?: boolean;
  quiet?: boolean;
  /**
   * Not a flag (no option sets it): the fs calls the output's durability rests on
   * (archive/durable-output.ts). Tests hand in wrappers that log each sync and rename; absent, Node's.
   */
  outputFs?: OutputFs;
}

export interface CopyResult {
  source: string;
  destination: string;
  digest: Digest;
  blobsSent: number;
  blobsPresent: number;
  blobsMounted: number;
  bytesSent: number;
  referrers: number;
  upToDate: boolean;
}

export async function runCopy(source: string, destination: string, flags: CopyFlags, env: Env): Promise<void> {
  const from = parseCopyEnd(source);
  const to = parseCopyEnd(destination);
  // Progress on stderr (stdout carries the result); none with --json or --quiet.
  const view = createProgressView(flags.json === true ? 'quiet' : progressMode(flags, process.stderr), process.stderr);
  const platforms = flags.platform === undefined ? undefined : parsePlatforms(flags.platform);
  try {
    const result = await withClients(flags, env, async (context) => {
      if (from.kind === 'registry' && to.kind === 'registry') {
        const src = await context.client(from.ref.registry);
        const dst = await context.client(to.ref.registry);
        return copyBetweenRegistries(src, from.ref, dst, to.ref, platforms, flags.referrers === true, view);
      }
      if (from.kind === 'registry') {
        if (to.kind === 'registry') throw new OciError('UNKNOWN', 'unreachable: registry to registry');
        const src = await context.client(from.ref.registry);
        return copyToArchive(src, from.ref, to, platforms, view, flags.referrers === true, flags.outputFs);
      }
      if (to.kind !== 'registry')
        throw new OciError('UNSUPPORTED', 'copy between two archives: one end must be a registry');
      return copyFromArchive(from, await context.client(to.ref.registry), to.ref, view);
    });
    view.stop();
    report(result, flags);
  } finally {
    view.stop();
  }
}

function report(result: CopyResult, flags: CopyFlags): void {
  if (flags.json === true) return writeJson(result);
  if (flags.quiet === true) return;
  if (result.upToDate) {
    process.stdout.write(`${result.destination} is already ${result.digest}: nothing to copy\n`);
    return;
  }
  const kept = result.blobsPresent + result.blobsMounted;
  const extra = result.referrers > 0 ? `, ${result.referrers} referrers` : '';
  process.stdout.write(
    `copied ${result.source} → ${result.destination} (${result.digest})\n` +
      `${result.blobsSent} blobs sent (${formatBytes(result.bytesSent)}), ${kept} already there` +
      `${result.blobsMounted > 0 ? ` (${result.blobsMounted} mounted)` : ''}${extra}\n`,
  );
}

async function copyBetweenRegistries(
  src: RegistryClient,
  from: DockerRef,
  dst: RegistryClient,
  to: DockerRef,
  platforms: Platform[] | undefined,
  referrers: boolean,
  view: ProgressView,
): Promise<CopyResult> {
  let fromRef: ImageRef = { name: from.repository, reference: refReference(from) ?? defaultTag };
  if (platforms?.length === 1) {
    // One platform: that image itself, as crane and regctl copy it (the index would name others).
    const root = await requireManifest(src, from);
    const parsed = parseManifest(root.bytes, root.mediaType);
    if (parsed.kind === 'index')
      fromRef = {
        name: from.repository,
        reference: pickPlatform(parsed.references, platforms[0], formatDockerRef(from)).digest,
      };
  }
  const result: CopyResult = {
    source: formatDockerRef(from),
    destination: formatDockerRef(to),
    digest: '' as Digest,
    blobsSent: 0,
    blobsPresent: 0,
    blobsMounted: 0,
    bytesSent: 0,
    referrers: 0,
    upToDate: false,
  };
  if (to.digest !== undefined) {
    // A destination named by digest takes that image under no tag; one the source is not at is refused
    // before anything moves (checked again after the copy, for a source tag moved in between).
    const want = await headManifest(src, fromRef.name, fromRef.reference);
    if (want !== undefined && want.digest !== to.digest) {
      throw new OciError(
        'DIGEST_INVALID',
        `${formatDockerRef(from)} is ${want.digest}, but the destination names ${to.digest}`,
      );
    }
  }
  const toReference = refReference(to);
  // HEAD both: a target already at the source's digest needs nothing (and costs no pull).
  if (!referrers && platforms === undefined && to.digest === undefined && toReference !== undefined) {
    const [have, want] = await Promise.all([
      headManifest(dst, to.repository, toReference),
      headManifest(src, fromRef.name, fromRef.reference),
    ]);
    if (want !== undefined && have?.digest === want.digest) return { ...result, digest: want.digest, upToDate: true };
  }
  const sameRegistry = src.host === dst.host;
  const reader = new RegistryImageReader(src);
  const writerOptions = sameRegistry ? { mountFrom: from.repository } : {};
  const writer = new RegistryImageWriter(dst, to.repository, {
    ...writerOptions,
    ...(to.tag === undefined ? {} : { tag: to.tag }),
  });
  const filter =
    platforms === undefined || platforms.length === 1
      ? undefined
      : (p: Platform) => platforms.some((w) => platformMatches(w, p));
  const summary = await copyImages(
    reader,
    writer,
    [{ from: fromRef, to: { name: to.repository, reference: to.tag ?? to.digest ?? fromRef.reference } }],
    {
      onEvent: view.onEvent,
      ...(filter === undefined ? {} : { platforms: filter }),
    },
  );
  const root = summary.images[0]?.digest;
  if (root === undefined) throw new OciError('UNKNOWN', 'the copy reported no image');
  if (to.digest !== undefined && to.digest !== root) {
    throw new OciError('DIGEST_INVALID', `copied ${root}, but the destination names ${to.digest}`);
  }
  Object.assign(result, { digest: root, blobsSent: summary.blobsSent, bytesSent: summary.bytes });
  addCounts(result, writer);
  if (referrers) await copyReferrers(src, dst, from.repository, to.repository, root, sameRegistry, view, result);
  return result;
}

function addCounts(result: CopyResult, writer: RegistryImageWriter): void {
  result.blobsPresent += writer.counts.blobsPresent;
  result.blobsMounted += writer.counts.blobsMounted;
}

/** Referrers of the subject, and theirs in turn (a signature on an SBOM), up to a few levels. */
async function copyReferrers(
  src: RegistryClient,
  dst: RegistryClient,
  fromRepo: RepoName,
  toRepo: RepoName,
  subject: Digest,
  sameRegistry: boolean,
  view: ProgressView,
  result: CopyResult,
): Promise<void> {
  const reader = new RegistryImageReader(src);
  let subjects: Digest[] = [subject];
  const seen = new Set<Digest>(subjects);
  for (let depth = 0; depth < 4 && subjects.length > 0; depth++) {
    const found = (await Promise.all(subjects.map((s) => listReferrers(src, fromRepo, s)))).flat();
    const fresh = found.filter((d) => !seen.has(d.digest));
    for (const d of fresh) seen.add(d.digest);
    if (fresh.length === 0) return;
    const writer = new RegistryImageWriter(dst, toRepo, sameRegistry ? { mountFrom: fromRepo } : {});
    const requests: CopyRequest[] = fresh.map((d) => ({
      from: { name: fromRepo, reference: d.digest },
      to: { name: toRepo, reference: d.digest },
    }));
    const summary = await copyImages(reader, writer, requests, { onEvent: view.onEvent });
    result.blobsSent += summary.blobsSent;
    result.bytesSent += summary.bytes;
    result.referrers += fresh.length;
    addCounts(result, writer);
    subjects = fresh.map((d) => d.digest);
  }
}
