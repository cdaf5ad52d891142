/**
 * @module proxy/upstream-client
 * What the proxy needs from an upstream registry. upstream/UpstreamRegistry
 * implements it; the proxy depends on this shape only, so its policy can be
 * read (and tested) without the HTTP details.
 */
import type { Digest } from '../oci/digest.js';

export interface UpstreamManifestInfo {
  mediaType: string;
  digest: Digest;
  size: number;
}

export interface UpstreamManifest extends UpstreamManifestInfo {
  bytes: Buffer;
}

export interface UpstreamBlob {
  size: number | undefined;
  body: AsyncIterable<Uint8Array>;
  cancel(): Promise<void>;
}

export interface UpstreamClient {
  readonly host: string;
  headManifest(repo: string, reference: string, accept: readonly string[]): Promise<UpstreamManifestInfo | undefined>;
  getManifest(repo: string, reference: string, accept: readonly string[]): Promise<UpstreamManifest | undefined>;
  getBlob(repo: string, digest: Digest): Promise<UpstreamBlob | undefined>;
  listTags(repo: string): Promise<string[] | undefined>;
}
