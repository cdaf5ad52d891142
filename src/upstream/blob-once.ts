/**
 * @module upstream/blob-once
 * An upstream blob answer as a BlobHandle that the transfer engine reads once: one GET, one body.
 * Used by both ends that read registries for the engine (proxy/upstream-reader for preload,
 * registry-image-reader for `wharf copy`).
 */
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobHandle } from '../oci/image-source.js';
import type { UpstreamBlob } from './upstream-config.js';

/** Refuses an answer without a length (the engine and the writers need the size up front). */
export async function blobReadOnce(host: string, digest: Digest, blob: UpstreamBlob): Promise<BlobHandle> {
  if (blob.size === undefined) {
    await blob.cancel();
    throw new OciError('SIZE_INVALID', `${host} sent blob ${digest} without a length`);
  }
  let opened = false;
  return {
    digest,
    size: blob.size,
    open: () => {
      // A second open would need a second request.
      if (opened) throw new OciError('UNKNOWN', `blob ${digest} was already read`);
      opened = true;
      return blob.body;
    },
  };
}
