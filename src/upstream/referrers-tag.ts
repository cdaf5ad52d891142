/**
 * @module upstream/referrers-tag
 * The referrers tag schema (distribution spec §Pushing Manifests with Subject): a registry that
 * does not answer OCI-Subject keeps no referrers index itself, so the client maintains an index
 * under the tag `<alg>-<hex>` of the subject, adding the new manifest's descriptor to it.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { ManifestContent } from '../oci/image-source.js';
import { parseManifest } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';
import type { RegistryClient } from './registry-client.js';
import { getManifest, referrersTag } from './registry-reads.js';
import { putManifest } from './registry-writes.js';

export async function updateReferrersTag(
  client: RegistryClient,
  repo: string,
  subject: Digest,
  referrer: ManifestContent,
): Promise<void> {
  const tag = referrersTag(subject);
  const current = await getManifest(client, repo, tag);
  let index: { schemaVersion: 2; mediaType: string; manifests: unknown[] } = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociIndex,
    manifests: [],
  };
  if (current !== undefined) {
    const parsed = parseManifest(current.bytes, current.mediaType);
    if (parsed.references.some((d) => d.digest === referrer.digest)) return;
    index = JSON.parse(Buffer.from(current.bytes).toString('utf8')) as typeof index;
  }
  const parsed = parseManifest(referrer.bytes, referrer.mediaType);
  const descriptor: Descriptor = {
    mediaType: referrer.mediaType,
    digest: referrer.digest,
    size: referrer.size,
    ...(parsed.artifactType === undefined ? {} : { artifactType: parsed.artifactType }),
    ...(parsed.annotations === undefined ? {} : { annotations: parsed.annotations }),
  };
  index.manifests.push(descriptor);
  await putManifest(client, repo, tag, Buffer.from(JSON.stringify(index)), mediaTypes.ociIndex);
}
