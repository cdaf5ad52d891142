/**
 * @module proxy/upstream-client
 * What the proxy needs from an upstream registry: upstream/UpstreamRegistry
 * implements it (the answer types are upstream's own); the proxy depends on
 * this port only, so its policy reads without the HTTP details.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type {
  UpstreamBlob,
  UpstreamBlobInfo,
  UpstreamManifest,
  UpstreamManifestInfo,
} from '../upstream/upstream-registry.js';

export type {
  UpstreamBlob,
  UpstreamBlobInfo,
  UpstreamManifest,
  UpstreamManifestInfo,
} from '../upstream/upstream-registry.js';

export interface UpstreamClient {
  readonly host: string;
  headManifest(repo: string, reference: string, accept: readonly string[]): Promise<UpstreamManifestInfo | undefined>;
  getManifest(repo: string, reference: string, accept: readonly string[]): Promise<UpstreamManifest | undefined>;
  /** Whether the upstream has the blob for repo, without downloading it. */
  headBlob(repo: string, digest: Digest): Promise<UpstreamBlobInfo | undefined>;
  /** `signal` aborts the request and its body. */
  getBlob(repo: string, digest: Digest, signal?: AbortSignal): Promise<UpstreamBlob | undefined>;
  listTags(repo: string): Promise<string[] | undefined>;
  /** The manifests whose subject is `digest` (referrers API, or the tag schema); for preload --referrers. */
  listReferrers?(repo: string, digest: Digest): Promise<Descriptor[]>;
}
