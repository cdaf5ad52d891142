/**
 * @module archive/docker-load-manifest
 * The docker `manifest.json` an export carries beside its OCI layout, so
 * `docker load` (which reads only manifest.json, also in docker 20.10) takes
 * the bundle: one entry per single-platform image, Config and Layers as paths
 * into `blobs/`. An index counts as single-platform when exactly one child is a
 * real platform (attestation manifests, platform unknown/unknown, are ignored).
 * Images docker could not load (a config that is not an image config, layers
 * that are neither tar nor gzip'd tar) get no entry; the layout still has them.
 * docker decompresses gzip'd layers and checks each against the config's diff_ids.
 */
import type { Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm, digestEncoded, type Digest } from '../oci/digest.js';
import type { ParsedManifest } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';

export interface DockerLoadEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

const loadableConfigs: ReadonlySet<string> = new Set([mediaTypes.ociConfig, mediaTypes.dockerConfig]);
const loadableLayers: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);

export function blobPath(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestEncoded(digest)}`;
}

/** The one image manifest a root stands for, or undefined when it is several platforms or none. */
export function singleImage(root: Digest, manifests: ReadonlyMap<Digest, ParsedManifest>): ParsedManifest | undefined {
  const parsed = manifests.get(root);
  if (parsed === undefined || parsed.kind === 'image') return parsed;
  if (parsed.kind !== 'index') return undefined;
  const platforms = parsed.references.filter((d) => !isAttestation(d));
  const only = platforms.length === 1 ? platforms[0] : undefined;
  const child = only === undefined ? undefined : manifests.get(only.digest);
  return child?.kind === 'image' ? child : undefined;
}

function isAttestation(descriptor: Descriptor): boolean {
  return descriptor.platform?.os === 'unknown' && descriptor.platform.architecture === 'unknown';
}

/** The manifest.json entries for the roots (tagged refs by manifest digest), in order; [] when none loads. */
export function buildDockerLoadManifest(
  roots: readonly { digest: Digest; refName: string; tagged: boolean }[],
  manifests: ReadonlyMap<Digest, ParsedManifest>,
  written: ReadonlySet<Digest>,
): DockerLoadEntry[] {
  const entries = new Map<Digest, DockerLoadEntry>();
  for (const root of roots) {
    const image = singleImage(root.digest, manifests);
    // Stryker disable next-line ArrayDeclaration: the mutant's fallback ["Stryker was here"] gives a string config, whose mediaType is undefined: the next line skips the root all the same.
    const [config, ...layers] = image?.references ?? [];
    if (config === undefined || !loadableConfigs.has(config.mediaType)) continue;
    if (!layers.every((l) => loadableLayers.has(l.mediaType) && written.has(l.digest))) continue;
    let entry = entries.get(config.digest);
    if (entry === undefined) {
      entry = { Config: blobPath(config.digest), RepoTags: [], Layers: layers.map((l) => blobPath(l.digest)) };
      entries.set(config.digest, entry);
    }
    if (root.tagged && !entry.RepoTags.includes(root.refName)) entry.RepoTags.push(root.refName);
  }
  return [...entries.values()];
}

/**
 * manifest.json for a layout directory that already had one: the RepoTags this batch names move to
 * its entries (docker load gives each RepoTag one image), an old entry left with none is dropped
 * (nothing names it any more; its blobs stay), and an image already listed gains the new RepoTags.
 */
export function mergeDockerLoadManifest(
  existing: readonly DockerLoadEntry[],
  added: readonly DockerLoadEntry[],
): DockerLoadEntry[] {
  const taken = new Set(added.flatMap((e) => e.RepoTags));
  const merged = existing
    .filter((e) => e.RepoTags.length === 0 || e.RepoTags.some((t) => !taken.has(t)))
    .map((e) => ({ ...e, RepoTags: e.RepoTags.filter((t) => !taken.has(t)) }));
  for (const entry of added) {
    const same = merged.find((e) => e.Config === entry.Config);
    if (same === undefined) merged.push({ ...entry, RepoTags: [...entry.RepoTags] });
    else for (const tag of entry.RepoTags) if (!same.RepoTags.includes(tag)) same.RepoTags.push(tag);
  }
  return merged;
}
