/**
 * @module cli/client/tree-command
 * `wharf tree <ref> [--data DIR]`: the image drawn as a tree (tree-text.ts) or as JSON; with
 * --data, the blobs a wharf store already holds are marked `cached` (the store is opened read-only,
 * so this runs beside `wharf serve`). Without it, a ref on a wharf mirror gets the same marks from
 * the mirror's Cache-Status answers (registry-cache-marks.ts).
 */
import { formatDockerRef, refReference } from '../../oci/docker-ref.js';
import { indexExists } from '../../store/database.js';
import { LocalStore } from '../../store/local-store.js';
import { openRef, withClients, writeJson, type Env, type RegistryFlags } from './client-context.js';
import { buildImageTree } from './image-tree.js';
import { markCachedFromRegistry } from './registry-cache-marks.js';
import { formatTree } from './tree-text.js';

export interface TreeFlags extends RegistryFlags {
  data?: string;
  referrers?: boolean;
}

export async function runTree(value: string, flags: TreeFlags, env: Env): Promise<void> {
  const dataDir = flags.data ?? env.WHARF_DATA;
  if (flags.data !== undefined && !indexExists(flags.data)) throw new Error(`no wharf store in ${flags.data}`);
  const store = dataDir !== undefined && indexExists(dataDir) ? LocalStore.openReadOnly(dataDir) : undefined;
  try {
    await withClients(flags, env, async (context) => {
      const { ref, client } = await openRef(context, value);
      const tree = await buildImageTree(client, ref.repository, refReference(ref) ?? 'latest', {
        referrers: flags.referrers !== false,
        ...(store === undefined ? {} : { isCached: (digest) => store.hasBlob(digest) }),
      });
      if (store === undefined) await markCachedFromRegistry(client, ref.repository, tree);
      if (flags.json === true) writeJson({ ref: formatDockerRef(ref), tree });
      else process.stdout.write(formatTree(tree, formatDockerRef(ref)));
    });
  } finally {
    store?.close();
  }
}
