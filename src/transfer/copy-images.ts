/**
 * @module transfer/copy-images
 * The transfer engine: copies images from an ImageReader to an ImageWriter.
 * For each image: plan its manifests (platform choice), send the blobs the
 * writer lacks with bounded concurrency, every byte verified against its digest
 * while it streams, then the manifests byte for byte, children first, then the
 * tag. One commit at the end makes the whole set visible; any failure aborts it,
 * so the writer is left as it was.
 */
import type { Descriptor, Platform } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { formatImageRef, type ImageRef } from '../oci/image-ref.js';
import type { ImageReader, ImageWriter } from '../oci/image-transfer.js';
import { verifyStream } from '../oci/verified-stream.js';
import { planImage } from './image-plan.js';
import { createLimiter, type Limiter } from './limit.js';
import { countProgress } from '../oci/count-progress.js';
import type { TransferListener } from '../oci/transfer-events.js';

export interface CopyOptions {
  /** Blobs in flight at once (default 4: enough to overlap reads and writes; more only competes for one disk). */
  concurrency?: number;
  /** Which platforms of an index to take; all when absent. */
  platforms?: (platform: Platform) => boolean;
  /** Also copy the referrers of every manifest copied (and theirs), when the reader can list them. */
  referrers?: boolean;
  /**
   * Copy an index whose children the reader does not all have, as it is: the absent ones stay
   * absent (a sparse index in the store, from preload --platform, exported). Default: an error.
   */
  sparse?: boolean;
  onEvent?: TransferListener;
}

export interface CopyRequest {
  from: ImageRef;
  /** The name and reference in the writer (default: the same as `from`). */
  to?: ImageRef;
}

export interface CopySummary {
  images: { ref: string; digest: Digest }[];
  /** Bytes of blobs sent (not skipped). */
  bytes: number;
  blobsSent: number;
  blobsSkipped: number;
  /** Referrer manifests copied with their subjects (`referrers`). */
  referrers: number;
}

export const defaultConcurrency = 4;

export async function copyImages(
  reader: ImageReader,
  writer: ImageWriter,
  requests: readonly CopyRequest[],
  options: CopyOptions = {},
): Promise<CopySummary> {
  const summary: CopySummary = { images: [], bytes: 0, blobsSent: 0, blobsSkipped: 0, referrers: 0 };
  const limit = createLimiter(options.concurrency ?? defaultConcurrency);
  // A blob shared by several images goes once: later images wait on the first send.
  const sending = new Map<Digest, Promise<boolean>>();
  try {
    for (const request of requests) {
      await copyOne(reader, writer, request, options, limit, sending, summary);
    }
    await writer.commit();
  } catch (error) {
    await writer.abort(error);
    throw error;
  }
  return summary;
}

async function copyOne(
  reader: ImageReader,
  writer: ImageWriter,
  request: CopyRequest,
  options: CopyOptions,
  limit: Limiter,
  sending: Map<Digest, Promise<boolean>>,
  summary: CopySummary,
): Promise<void> {
  const emit = options.onEvent ?? ((): void => undefined);
  const image = formatImageRef(request.from);
  const to = request.to ?? request.from;
  const plan = await planImage(reader, request.from, {
    platforms: options.platforms,
    referrers: options.referrers === true,
    sparse: options.sparse === true,
  });
  const bytes = plan.blobs.reduce((sum, blob) => sum + blob.size, 0);
  emit({ type: 'image-start', image, digest: plan.root.digest, blobs: plan.blobs.length, bytes });

  const sendBlob = async (blob: Descriptor, stop: { error?: unknown }): Promise<boolean> => {
    if (await writer.hasBlob(blob.digest)) return false;
    const handle = await reader.openBlob(request.from.name, blob.digest);
    if (handle === undefined) {
      throw new OciError('BLOB_UNKNOWN', `${image}: blob ${blob.digest} is not available`, {
        detail: { digest: blob.digest },
      });
    }
    if (handle.size !== blob.size) {
      throw new OciError(
        'SIZE_INVALID',
        `${image}: blob ${blob.digest} is ${handle.size} bytes, the manifest says ${blob.size}`,
      );
    }
    emit({ type: 'blob-start', image, digest: blob.digest, size: blob.size });
    const counted = countProgress(stopOnFailure(handle.open(), stop), (done) =>
      emit({ type: 'blob-progress', image, digest: blob.digest, size: blob.size, done }),
    );
    // A writer that verifies as it writes (the store) needs no second hash of the same bytes.
    const body = writer.verifiesBlobs === true ? counted : verifyStream(counted, blob);
    await writer.writeBlob({ digest: blob.digest, size: blob.size }, body);
    emit({ type: 'blob-done', image, digest: blob.digest, size: blob.size });
    summary.bytes += blob.size;
    return true;
  };

  // On the first failure the other sends stop at their next chunk; the abort then runs on a quiet writer.
  const stop: { error?: unknown } = {};
  const results = await Promise.allSettled(
    plan.blobs.map(async (blob) => {
      let sent = sending.get(blob.digest);
      const mine = sent === undefined;
      if (sent === undefined) {
        sent = limit(() => (stop.error === undefined ? sendBlob(blob, stop) : Promise.reject(asError(stop.error))));
        sending.set(blob.digest, sent);
      }
      try {
        const didSend = await sent;
        if (mine && didSend) summary.blobsSent++;
        else {
          summary.blobsSkipped++;
          emit({ type: 'blob-skipped', image, digest: blob.digest, size: blob.size });
        }
      } catch (error) {
        stop.error ??= error;
        throw error;
      }
    }),
  );
  if (results.some((r) => r.status === 'rejected')) throw stop.error;
  for (const manifest of plan.manifests) await writer.writeManifest(to.name, manifest);
  await writer.tag(to.name, to.reference, plan.root.digest);
  summary.referrers += plan.referrers;
  summary.images.push({ ref: formatImageRef(to), digest: plan.root.digest });
  emit({ type: 'image-done', image, digest: plan.root.digest, bytes });
}

async function* stopOnFailure(
  body: AsyncIterable<Uint8Array>,
  stop: { error?: unknown },
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const chunk of body) {
    if (stop.error !== undefined) throw new OciError('UNKNOWN', 'stopped: another blob of the copy failed');
    yield chunk;
  }
}

// Stryker disable next-line BlockStatement: its value only rejects a waiting send of a copy already failed; copyImages throws stop.error, never this.
function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
