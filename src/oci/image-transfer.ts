/**
 * @module oci/image-transfer
 * The two ends of a copy, as the transfer engine sees them. An ImageReader is
 * the pull side (the local store, an upstream client, the proxy: any ImageSource
 * fits as it is). An ImageWriter takes blobs, manifests and tags and makes them
 * visible all at once on commit(), or not at all on abort(): an import never
 * leaves half an image behind. The local store, an OCI layout tar and (later) a
 * remote registry or a docker-archive tar implement it.
 */
import type { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import type { BlobHandle, BlobInfo, ManifestContent } from './image-source.js';
import type { RepoName, Tag } from './reference.js';

export interface ImageReader {
  /** The manifest a tag or digest names in repository `name`: its exact bytes and media type. */
  getManifest(name: RepoName, reference: Tag | Digest): Promise<ManifestContent | undefined>;
  /** A blob of repository `name`, with its size; its bytes are read only through open(). */
  openBlob(name: RepoName, digest: Digest): Promise<BlobHandle | undefined>;
  /**
   * The manifests whose subject is `subject` (distribution-spec referrers), for
   * copies with referrers. A reader without it has none to give.
   */
  listReferrers?(name: RepoName, subject: Digest): Promise<Descriptor[]>;
}

export interface ImageWriter {
  /**
   * True when writeBlob itself hashes the bytes while they stream, checks size and
   * digest, and keeps nothing on a mismatch (the store's verified write path). A
   * caller may then leave out its own pass: every byte is hashed once, not twice.
   */
  readonly verifiesBlobs?: boolean;
  /** Whether the writer already holds these bytes (from before, or from this batch): then they are not sent. */
  hasBlob(digest: Digest): Promise<boolean>;
  /**
   * Takes a blob's bytes. The body may fail midway (a digest mismatch is an error
   * thrown by the body, never a clean end): the writer then keeps nothing of it.
   */
  writeBlob(blob: BlobInfo, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** A manifest of repository `name`, byte for byte; called once its blobs are written. */
  writeManifest(name: RepoName, manifest: ManifestContent): Promise<void>;
  /** Names a written manifest: `name:tag`, or `name@digest` for an image asked for by digest. */
  tag(name: RepoName, reference: Tag | Digest, digest: Digest): Promise<void>;
  /** Makes everything written visible at once. */
  commit(): Promise<void>;
  /** Drops everything this writer wrote; what was there before stays exactly as it was. */
  abort(error?: unknown): Promise<void>;
}

/**
 * A writer that also takes a blob whose digest is learnt from its bytes: a
 * docker-archive names its layers by path (`<id>/layer.tar`), and which digest
 * each must have is known only from manifest.json and the config, which come
 * later in the tar. The caller checks the digest it gets back against the config.
 */
export interface DigestingImageWriter extends ImageWriter {
  /**
   * Streams `size` bytes in, hashing them; resolves to the digest they have, and whether this write
   * added the blob (false: the target held it already, known only once it is hashed).
   */
  writeUnnamedBlob(size: number, body: AsyncIterable<Uint8Array>): Promise<UnnamedBlob>;
}

export interface UnnamedBlob extends BlobInfo {
  added: boolean;
}
