/**
 * @module oci/verified-stream
 * A stage that checks a blob while it streams: size and digest. It holds back
 * the last chunk until both match, so a consumer never sees a complete body
 * with the wrong bytes: a mismatch is an error, never a clean end.
 */
import { createDigester, digestAlgorithm, formatDigest, type Digest } from './digest.js';
import { OciError } from './errors.js';

export interface VerifyTarget {
  digest: Digest;
  size: number;
  /** Names the blob in errors (e.g. its path in an archive). */
  label?: string;
}

export async function* verifyStream(
  body: AsyncIterable<Uint8Array>,
  target: VerifyTarget,
): AsyncGenerator<Uint8Array, void, undefined> {
  const hash = createDigester(digestAlgorithm(target.digest));
  const label = target.label ?? target.digest;
  let received = 0;
  let held: Uint8Array | undefined;
  for await (const chunk of body) {
    received += chunk.byteLength;
    if (received > target.size) {
      throw new OciError('SIZE_INVALID', `${label}: more than the expected ${target.size} bytes`, {
        detail: { digest: target.digest, expected: target.size },
      });
    }
    hash.update(chunk);
    if (held !== undefined) yield held;
    held = chunk;
  }
  if (received !== target.size) {
    throw new OciError('SIZE_INVALID', `${label}: ${received} bytes, expected ${target.size} (truncated)`, {
      detail: { digest: target.digest, expected: target.size, received },
    });
  }
  const computed = formatDigest(digestAlgorithm(target.digest), hash);
  if (computed !== target.digest) {
    throw new OciError('DIGEST_INVALID', `${label}: content does not match its digest (computed ${computed})`, {
      detail: { expected: target.digest, computed },
    });
  }
  if (held !== undefined) yield held;
}
