/**
 * @module upstream/registry-image-reader
 * A registry as the transfer engine's ImageReader (the pull end of `wharf copy`). Nothing here is
 * trusted: the engine verifies every blob against its digest while it streams, and manifests
 * asked by digest are checked against it on arrival (registry-reads.ts). Referrers come from the
 * referrers API, else the spec's fallback tag (registry-reads.ts), so `--referrers` reaches archives too.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { BlobHandle, ManifestContent } from '../oci/image-source.js';
import type { ImageReader } from '../oci/image-transfer.js';
import type { RepoName, Tag } from '../oci/reference.js';
import type { RegistryClient } from './registry-client.js';
import { blobReadOnce } from './blob-once.js';
import { getBlob, getManifest, listReferrers } from './registry-reads.js';

export class RegistryImageReader implements ImageReader {
  constructor(private readonly client: RegistryClient) {}

  async getManifest(name: RepoName, reference: Tag | Digest): Promise<ManifestContent | undefined> {
    const manifest = await getManifest(this.client, name, reference);
    if (manifest === undefined) return undefined;
    return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, bytes: manifest.bytes };
  }

  listReferrers(name: RepoName, subject: Digest): Promise<Descriptor[]> {
    return listReferrers(this.client, name, subject);
  }

  async openBlob(name: RepoName, digest: Digest): Promise<BlobHandle | undefined> {
    const blob = await getBlob(this.client, name, digest);
    return blob === undefined ? undefined : blobReadOnce(this.client.host, digest, blob);
  }
}
