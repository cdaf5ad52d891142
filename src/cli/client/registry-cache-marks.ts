/**
 * @module cli/client/registry-cache-marks
 * `wharf tree` against a wharf URL: marks the blobs that mirror holds. A wharf mirror answers
 * mirrored manifests and blobs with `Cache-Status: wharf; …` (RFC 9211, registry/cache-status.ts).
 * One HEAD on the root manifest tells whether the registry is such a mirror (any other registry
 * costs that one request and gets no marks); then each blob is HEADed, 8 at a time: `hit` is held.
 * A HEAD reads no bytes (a mirror asks its upstream with a HEAD too, and keeps nothing).
 */
import type { Digest } from '../../oci/digest.js';
import { cacheName } from '../../registry/cache-status.js';
import { createLimiter } from '../../transfer/limit.js';
import { probeCacheStatus } from '../../upstream/cache-status-probe.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import type { TreeNode } from './image-tree.js';

const concurrentHeads = 8;

/** Marks `cached` on every config and layer of the tree; false when the registry is not a wharf mirror. */
export async function markCachedFromRegistry(client: RegistryClient, repo: string, tree: TreeNode): Promise<boolean> {
  const root = await probeCacheStatus(client, repo, 'manifests', tree.digest);
  if (parseWharfStatus(root.cacheStatus) === undefined) return false;
  const blobs: TreeNode[] = [];
  collectBlobs(tree, blobs);
  const limit = createLimiter(concurrentHeads);
  const verdicts = new Map<Digest, Promise<boolean>>();
  await Promise.all(
    blobs.map(async (node) => {
      let verdict = verdicts.get(node.digest);
      if (verdict === undefined) {
        verdict = limit(async () => {
          const probe = await probeCacheStatus(client, repo, 'blobs', node.digest);
          return probe.found && parseWharfStatus(probe.cacheStatus)?.includes('hit') === true;
        });
        verdicts.set(node.digest, verdict);
      }
      node.cached = await verdict;
    }),
  );
  return true;
}

/**
 * The parameters of wharf's member of a Cache-Status list (`wharf; hit`, `wharf; fwd=miss; stored`);
 * the last wharf member is the one nearest the client. undefined when wharf is not in the list.
 */
export function parseWharfStatus(header: string | undefined): string[] | undefined {
  if (header === undefined) return undefined;
  let found: string[] | undefined;
  for (const member of header.split(',')) {
    const [name, ...params] = member.split(';').map((part) => part.trim());
    if (name === cacheName || name === `"${cacheName}"`) found = params;
  }
  return found;
}

function collectBlobs(node: TreeNode, into: TreeNode[]): void {
  if (node.kind === 'config' || node.kind === 'layer') into.push(node);
  for (const child of node.children) collectBlobs(child, into);
}
