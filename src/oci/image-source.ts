/**
 * @module oci/image-source
 * The two interfaces every layer speaks: reading images (ImageSource) and
 * writing them (ImageSink). The local store implements both; the upstream
 * client and the pull-through proxy implement ImageSource. The HTTP routes,
 * archives and CLI take whichever they are handed.
 */
import type { Digest } from './digest.js';
import type { Descriptor } from './descriptor.js';
import type { RepoName, Tag } from './reference.js';
import type { ReadTrace } from './read-trace.js';

/** An inclusive byte range, already checked against the blob's size. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** A blob that exists; its bytes are read only when asked for. */
export interface BlobHandle extends BlobInfo {
  open(range?: ByteRange): AsyncIterable<Uint8Array>;
  /**
   * Random access, for blobs that are whole files: fills `buffer` from
   * `position`, returns the bytes read. Lets the HTTP layer serve from two
   * reused buffers instead of a fresh one per chunk (flat memory under load).
   * `range` is the part the caller will read, when not the whole blob: a blob
   * still being verified (a fill) makes a range that stops short of its end wait
   * for the verdict, since finishing such a range proves nothing about the digest.
   */
  openFile?(range?: ByteRange): Promise<BlobFile>;
}

export interface BlobFile {
  read(buffer: Uint8Array, position: number): Promise<number>;
  /** The read size this file serves best, when it differs from the caller's default. */
  readonly chunkBytes?: number;
  close(): Promise<void>;
}

export interface ManifestInfo {
  mediaType: string;
  digest: Digest;
  size: number;
}

export interface ManifestContent extends ManifestInfo {
  bytes: Uint8Array;
}

/** n and last, as in tags/list and _catalog (spec §Listing Tags). */
export interface PageRequest {
  n?: number;
  last?: string;
}

/**
 * What a read request carried besides its name and reference: the namespace a
 * mirror client named (containerd's `?ns=`) and the media types it accepts.
 * A plain store ignores both; the pull-through proxy routes and negotiates with them.
 */
export interface ReadOptions {
  namespace?: string;
  accept?: readonly string[];
  /** Written by a mirror: how it answered (read-trace.ts). */
  trace?: ReadTrace;
}

export interface ImageSource {
  openBlob(name: RepoName, digest: Digest, options?: ReadOptions): Promise<BlobHandle | undefined>;
  /**
   * Digest and size of a blob visible under name, without reading or fetching
   * its bytes (HEAD): a mirror asks its upstream rather than downloading.
   */
  statBlob(name: RepoName, digest: Digest, options?: ReadOptions): Promise<BlobInfo | undefined>;
  /** reference is a tag or a digest string, already parsed. */
  getManifest(name: RepoName, reference: Tag | Digest, options?: ReadOptions): Promise<ManifestContent | undefined>;
  statManifest(name: RepoName, reference: Tag | Digest, options?: ReadOptions): Promise<ManifestInfo | undefined>;
  /** undefined when the repository is unknown. */
  listTags(name: RepoName, page: PageRequest, options?: ReadOptions): Promise<string[] | undefined>;
  listReferrers(name: RepoName, subject: Digest, artifactType?: string, options?: ReadOptions): Promise<Descriptor[]>;
  listRepositories(page: PageRequest): Promise<string[]>;
}

export interface UploadState {
  id: string;
  name: RepoName;
  /** Bytes received so far. */
  size: number;
}

/** Where a chunk claims to start and end (Content-Range on PATCH and PUT). */
export interface ChunkRange {
  start: number;
  end: number;
}

export interface PutManifestResult extends ManifestInfo {
  subject?: Digest;
  tags: Tag[];
}

export interface ImageSink {
  /** `client` (the client's address) counts the session against a per-client cap; a full cap is TOOMANYREQUESTS. */
  startUpload(name: RepoName, client?: string): Promise<UploadState>;
  getUpload(name: RepoName, id: string): Promise<UploadState | undefined>;
  appendUpload(name: RepoName, id: string, body: AsyncIterable<Uint8Array>, range?: ChunkRange): Promise<UploadState>;
  finishUpload(
    name: RepoName,
    id: string,
    digest: Digest,
    body?: AsyncIterable<Uint8Array>,
    range?: ChunkRange,
  ): Promise<BlobInfo>;
  cancelUpload(name: RepoName, id: string): Promise<boolean>;
  /** Monolithic push of a whole blob whose digest is known up front. */
  putBlob(name: RepoName, digest: Digest, body: AsyncIterable<Uint8Array>, size?: number): Promise<BlobInfo>;
  /**
   * Links a blob into name from the repository `from`, or, given a predicate,
   * from any repository holding it that the predicate accepts (automatic content
   * discovery, limited to what the client may read). undefined if not found.
   */
  mountBlob(
    name: RepoName,
    digest: Digest,
    from: RepoName | ((candidate: RepoName) => boolean),
  ): Promise<BlobInfo | undefined>;
  deleteBlob(name: RepoName, digest: Digest): Promise<boolean>;
  putManifest(
    name: RepoName,
    reference: Tag | Digest,
    bytes: Uint8Array,
    contentType: string | undefined,
    extraTags?: Tag[],
  ): Promise<PutManifestResult>;
  /** A tag deletes the tag only; a digest deletes the manifest and every tag on it. */
  deleteManifest(name: RepoName, reference: Tag | Digest): Promise<boolean>;
}
