/**
 * @module test/support/graph-store
 * A LocalStore filled by hand for the tests of what eviction takes and what it never takes
 * (store/pinned-content.ts, store/eviction.ts): images, indexes and referrers written through the
 * store's own write paths, pushed (`putManifest`: source pushed) or fetched (`putFetchedManifest`, as
 * the mirror keeps what it fetched), and loose blobs. Then the store is closed and the index opened
 * on its own connection, where a test sets last-read times and runs the lifecycle's functions.
 */
import type { Digest } from '../../src/oci/digest.js';
import { requireRepoName, type Tag } from '../../src/oci/reference.js';
import { indexPath, openDatabase, type Db } from '../../src/store/database.js';
import { LocalStore } from '../../src/store/local-store.js';
import { content, descriptorOf, imageIndex, imageManifest, ociTypes, once, type Content } from './store-content.js';

export type Source = 'pushed' | 'fetched';

export interface StoredImage {
  repository: string;
  manifest: Content;
  config: Content;
  layers: Content[];
}

export interface ImageOptions {
  /** Layers stored before (shared with another image); each image also gets one layer of its own. */
  shared?: Content[];
  /** Makes it a referrer of that manifest (stored or not). */
  subject?: Content;
  /** More descriptors among its layers (e.g. another manifest's). */
  extra?: Content[];
  tag?: string;
}

/** The blob digests an image names (config and layers), sorted. */
export function blobsOf(image: StoredImage): string[] {
  return [image.config.digest, ...image.layers.map((l) => l.digest)].sort();
}

export class GraphStore {
  private constructor(
    readonly root: string,
    private readonly store: LocalStore,
  ) {}

  static async open(root: string): Promise<GraphStore> {
    return new GraphStore(root, await LocalStore.open(root));
  }

  /** A blob linked in `repository` (no manifest names it unless one is written later). */
  async blob(repository: string, data: string): Promise<Content> {
    const item = content(data);
    await this.store.putBlob(requireRepoName(repository), item.digest, once(item.bytes), item.size);
    return item;
  }

  /** Drops the link of `digest` in `repository` (the blob row stays, for gc). */
  async unlink(repository: string, digest: Digest): Promise<void> {
    await this.store.deleteBlob(requireRepoName(repository), digest);
  }

  /** An image manifest with its own config and layer (and `options.shared`), its blobs linked first. */
  async image(repository: string, seed: string, source: Source, options: ImageOptions = {}): Promise<StoredImage> {
    const config = await this.blob(repository, JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
    const own = await this.blob(repository, `layer of ${seed}`);
    for (const layer of options.shared ?? []) {
      await this.store.putBlob(requireRepoName(repository), layer.digest, once(layer.bytes), layer.size);
    }
    const layers = [own, ...(options.shared ?? [])];
    const descriptors = [...layers, ...(options.extra ?? [])].map((l) => descriptorOf(l, ociTypes.layer));
    const manifest = imageManifest(
      config,
      descriptors,
      options.subject === undefined
        ? {}
        : {
            artifactType: 'application/vnd.example.signature',
            subject: descriptorOf(options.subject, ociTypes.manifest),
          },
    );
    await this.manifest(repository, manifest, ociTypes.manifest, source, options.tag);
    return { repository, manifest, config, layers };
  }

  /** An index over `children` (stored or not). */
  async index(repository: string, children: Content[], source: Source, tag?: string): Promise<Content> {
    const manifest = imageIndex(children.map((c) => descriptorOf(c, ociTypes.manifest)));
    await this.manifest(repository, manifest, ociTypes.index, source, tag);
    return manifest;
  }

  private async manifest(
    repository: string,
    manifest: Content,
    mediaType: string,
    source: Source,
    tag: string | undefined,
  ): Promise<void> {
    const name = requireRepoName(repository);
    if (source === 'pushed') {
      await this.store.putManifest(name, (tag ?? manifest.digest) as Tag | Digest, manifest.bytes, mediaType);
    } else {
      await this.store.putFetchedManifest(
        name,
        { digest: manifest.digest, mediaType, bytes: manifest.bytes },
        tag as Tag | undefined,
      );
    }
  }

  /** Closes the store and opens its index on a connection of the test's own. */
  openIndex(): Db {
    this.store.close();
    return openDatabase(indexPath(this.root));
  }
}

/** Sets the last read of each manifest (what eviction orders by: `coalesce(accessed_at, created_at)`). */
export function setLastRead(db: Db, times: [Content, number][]): void {
  const update = db.prepare('UPDATE blobs SET accessed_at = ? WHERE digest = ?');
  for (const [item, at] of times) update.run(at, item.digest);
}

/** (repository, digest) of every manifest row, sorted. */
export function manifestRows(db: Db): string[] {
  return db
    .prepare<[], { name: string; digest: string }>(
      'SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id',
    )
    .all()
    .map((row) => `${row.name} ${row.digest}`)
    .sort();
}

/** Every blob row's digest, sorted. */
export function blobRows(db: Db): string[] {
  return db
    .prepare<[], { digest: string }>('SELECT digest FROM blobs')
    .all()
    .map((row) => row.digest)
    .sort();
}

/** The graph key (store/pinned-content.ts manifestKey) of `item` in `repository`. */
export function keyOf(db: Db, repository: string, item: { digest: string }): string {
  const row = db.prepare<[string], { id: number }>('SELECT id FROM repositories WHERE name = ?').get(repository);
  if (row === undefined) throw new Error(`no repository ${repository}`);
  return `${row.id} ${item.digest}`;
}
