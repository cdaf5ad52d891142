/**
 * @module cli/client/image-tree
 * The whole of an image as a tree, read from a registry without pulling layers: an index, each
 * platform's manifest, its config and layers, and the referrers (signatures, SBOMs) under the
 * manifest they refer to. Sizes add up per platform and, counting each blob once, overall.
 */
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { parseManifest } from '../../oci/manifest.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { getManifest, listReferrers } from '../../upstream/registry-reads.js';
import { formatPlatform } from './platforms.js';

export type NodeKind = 'index' | 'image' | 'config' | 'layer' | 'referrer' | 'attestation' | 'manifest';

export interface TreeNode {
  kind: NodeKind;
  /** 'linux/amd64' for a platform's image, the artifactType for a referrer. */
  label?: string;
  mediaType: string;
  digest: Digest;
  /** The node's own bytes (a manifest's, a blob's). */
  size: number;
  /** What the node stands for in bytes: its blobs (each once), for manifests. */
  total: number;
  /** With --data: whether the local store holds this blob. */
  cached?: boolean;
  children: TreeNode[];
  /** Platforms in an index. */
  platforms?: number;
}

export interface TreeOptions {
  referrers: boolean;
  isCached?: (digest: Digest) => boolean;
}

/** Indexes nest rarely; referrers of referrers (a signature of an SBOM) a level or two. */
const maxDepth = 4;

export async function buildImageTree(
  client: RegistryClient,
  repo: string,
  reference: string,
  options: TreeOptions,
): Promise<TreeNode> {
  const root = await getManifest(client, repo, reference);
  if (root === undefined)
    throw new OciError('MANIFEST_UNKNOWN', `${client.host}/${repo}:${reference}: no such manifest`);
  const descriptor: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size };
  return describe(client, repo, descriptor, root.bytes, options, 0, undefined);
}

async function describe(
  client: RegistryClient,
  repo: string,
  descriptor: Descriptor,
  bytes: Uint8Array | undefined,
  options: TreeOptions,
  depth: number,
  kind: NodeKind | undefined,
): Promise<TreeNode> {
  if (depth > maxDepth) throw new OciError('MANIFEST_INVALID', `${descriptor.digest}: nested too deep`);
  const content = bytes ?? (await getManifest(client, repo, descriptor.digest))?.bytes;
  if (content === undefined) {
    throw new OciError('MANIFEST_UNKNOWN', `${client.host}/${repo}: manifest ${descriptor.digest} is missing`);
  }
  const parsed = parseManifest(content, descriptor.mediaType);
  const node: TreeNode = {
    kind: kind ?? (parsed.kind === 'index' ? 'index' : 'image'),
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    total: 0,
    children: [],
  };
  if (kind === 'referrer' && parsed.artifactType !== undefined) node.label = parsed.artifactType;
  const blobs = new Map<Digest, number>();
  if (parsed.kind === 'index') {
    node.platforms = 0;
    // The platforms' manifests are read side by side (a 7-platform index is 7 round trips otherwise).
    const kinds = parsed.references.map((child) =>
      child.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest'
        ? ('attestation' as const)
        : undefined,
    );
    const subs = await Promise.all(
      parsed.references.map((child, i) => describe(client, repo, child, undefined, options, depth + 1, kinds[i])),
    );
    subs.forEach((sub, i) => {
      const platform = parsed.references[i]?.platform;
      if (platform !== undefined && kinds[i] === undefined) {
        sub.label = formatPlatform(platform);
        node.platforms = (node.platforms ?? 0) + 1;
      }
      node.children.push(sub);
      collect(sub, blobs);
    });
  } else {
    parsed.references.forEach((blob, i) => {
      const child: TreeNode = {
        kind: i === 0 ? 'config' : 'layer',
        mediaType: blob.mediaType,
        digest: blob.digest,
        size: blob.size,
        total: blob.size,
        children: [],
        ...(options.isCached === undefined ? {} : { cached: options.isCached(blob.digest) }),
      };
      node.children.push(child);
      blobs.set(blob.digest, blob.size);
    });
  }
  node.total = [...blobs.values()].reduce((sum, size) => sum + size, 0);
  if (options.referrers) {
    const referrers = await listReferrers(client, repo, descriptor.digest);
    const nodes = referrers.map((r) => describe(client, repo, r, undefined, options, depth + 1, 'referrer'));
    node.children.push(...(await Promise.all(nodes)));
  }
  return node;
}

/** The blobs under a node, each once (layers shared between platforms count once overall). */
function collect(node: TreeNode, into: Map<Digest, number>): void {
  if (node.kind === 'config' || node.kind === 'layer') into.set(node.digest, node.size);
  for (const child of node.children) if (child.kind !== 'referrer') collect(child, into);
}
