/**
 * @module test/support/fill-harness
 * Driving a FillRegistry by hand: an upstream body released piece by piece, reads the way the HTTP
 * layer makes them, and a check that a promise is still pending.
 */
import { createHash } from 'node:crypto';
import { requireDigest, type Digest } from '../../src/oci/digest.js';
import type { BlobFile } from '../../src/oci/image-source.js';
import type { UpstreamBlob } from '../../src/proxy/upstream-client.js';

/** The chunk size of gatedUpstream's body, as a socket would hand it over. */
export const chunkBytes = 64 * 1024;

export function digestOf(bytes: Buffer): Digest {
  return requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

export interface GatedUpstream {
  blob: UpstreamBlob;
  /** Lets the body send up to this many bytes of the content. */
  release(upTo: number): void;
  /** Ends the body once everything released was sent. */
  end(): void;
  /** The fill called `cancel()` on the blob. */
  readonly cancelled: boolean;
}

/**
 * An upstream body that sends 64 KiB chunks of `content` only as far as `release(upTo)` allows.
 * `size` is what it announces (default the content's length; undefined: no Content-Length); an
 * aborted `signal` fails the body, as undici does.
 */
export function gatedUpstream(
  content: Buffer,
  options: { size?: number | undefined; signal?: AbortSignal } = {},
): GatedUpstream {
  const size = 'size' in options ? options.size : content.byteLength;
  let allowed = 0;
  let ended = false;
  let cancelled = false;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  options.signal?.addEventListener('abort', poke);
  async function* body(): AsyncGenerator<Uint8Array> {
    let sent = 0;
    for (;;) {
      if (options.signal?.aborted === true) throw new Error('This operation was aborted');
      if (sent < allowed) {
        const next = Math.min(allowed, sent + chunkBytes);
        yield content.subarray(sent, next);
        sent = next;
        continue;
      }
      if (ended || cancelled) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }
  return {
    blob: {
      size,
      body: body(),
      cancel: async () => {
        cancelled = true;
        poke();
      },
    },
    release(upTo) {
      allowed = Math.max(allowed, upTo);
      poke();
    },
    end() {
      ended = true;
      poke();
    },
    get cancelled() {
      return cancelled;
    },
  };
}

/** Reads [position, end) with one reused buffer, as the HTTP layer does. */
export async function readRange(file: BlobFile, position: number, end: number): Promise<Buffer> {
  const buffer = Buffer.alloc(file.chunkBytes ?? chunkBytes);
  const parts: Buffer[] = [];
  while (position < end) {
    const bytes = await file.read(buffer.subarray(0, Math.min(buffer.byteLength, end - position)), position);
    if (bytes === 0) throw new Error(`read 0 bytes at ${position}`);
    parts.push(Buffer.from(buffer.subarray(0, bytes)));
    position += bytes;
  }
  return Buffer.concat(parts);
}

/** Resolves when `promise` settles within `ms`, else 'pending'. */
export async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}
