/**
 * @module cli/client/small-blob
 * Reads a small blob (an image config, an artifact's file list) whole, capped and verified
 * against its descriptor: a config is JSON of a few KiB, never a layer.
 */
import type { Descriptor } from '../../oci/descriptor.js';
import { OciError } from '../../oci/errors.js';
import { verifyStream } from '../../oci/verified-stream.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { getBlob } from '../../upstream/registry-reads.js';

/** 16 MiB bounds a hostile config; real ones are KiB. */
export const maxSmallBlobBytes = 16 * 1024 * 1024;

export async function readSmallBlob(client: RegistryClient, repo: string, descriptor: Descriptor): Promise<Buffer> {
  if (descriptor.size > maxSmallBlobBytes) {
    throw new OciError('SIZE_INVALID', `${descriptor.digest}: ${descriptor.size} bytes is too large to show`);
  }
  const blob = await getBlob(client, repo, descriptor.digest);
  if (blob === undefined)
    throw new OciError('BLOB_UNKNOWN', `${client.host}/${repo}: blob ${descriptor.digest} is missing`);
  const chunks: Uint8Array[] = [];
  for await (const chunk of verifyStream(blob.body, descriptor)) chunks.push(chunk);
  return Buffer.concat(chunks);
}
