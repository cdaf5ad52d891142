/**
 * @module upstream/read-body
 * The three ways an upstream body ends: read whole under a cap (manifests, tags, tokens, error
 * bodies), streamed to the caller (blobs), or discarded. undici keeps a connection busy until its
 * body is consumed or destroyed, so every response goes through one of these.
 */
import type { Dispatcher } from 'undici';
import { OciError } from '../oci/errors.js';

export type ResponseBody = Dispatcher.ResponseData['body'];

/** A small leftover is cheaper to read than a new TCP/TLS connection; a large one is cut. */
const discardLimitBytes = 64 * 1024;

/** Releases a body that will not be read; never throws (the connection is closed instead). */
export async function discardBody(body: ResponseBody): Promise<void> {
  try {
    await body.dump({ limit: discardLimitBytes });
  } catch {
    // dump destroys the body on failure, which releases the connection: nothing left to do.
  }
}

function unavailable(where: string, cause: unknown): OciError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new OciError('UNAVAILABLE', `${where}: reading the response failed: ${why}`, { cause });
}

/**
 * Reads a body into memory, refusing more than `limit` bytes (checked on Content-Length first, then
 * while reading, so a lying or absent length cannot make it buffer more). `tooLarge` builds the error.
 */
export async function readCapped(
  body: ResponseBody,
  limit: number,
  declaredLength: number | undefined,
  where: string,
  tooLarge: () => OciError,
): Promise<Buffer> {
  if (declaredLength !== undefined && declaredLength > limit) {
    body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > limit) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (error) {
    body.destroy();
    throw error instanceof OciError ? error : unavailable(where, error);
  }
  return Buffer.concat(chunks, total);
}

/** At most `limit` bytes of a body, for error messages; the rest is discarded. */
export async function readPrefix(body: ResponseBody, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.byteLength;
      if (total >= limit) break;
    }
  } catch {
    // An error body that breaks off is still an error: report what arrived.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks, total).subarray(0, limit);
}

/**
 * Past this many buffered bytes the socket is paused until the consumer catches up. The
 * kernel's socket buffer reads ahead as well, so more here only adds memory per fill.
 */
const maxQueuedBytes = 1024 * 1024;

/**
 * The body as an async iterable of raw bytes, chunk by chunk as undici read
 * them (no copying them together: the consumer batches its own writes, and a
 * concat of every queued chunk cost a tenth of a cold fill's CPU). Up to
 * `maxQueuedBytes` are read ahead while the consumer is busy. Socket errors and idle
 * timeouts surface as UNAVAILABLE with the undici error as cause, and so does a body destroyed
 * before the first read; leaving the loop early (break, throw) destroys the body so the
 * connection is not left half-read.
 */
export async function* streamBody(body: ResponseBody, where: string): AsyncGenerator<Uint8Array, void, undefined> {
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  body.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.byteLength;
    if (queued >= maxQueuedBytes) body.pause();
    notify();
  });
  body.on('end', () => {
    ended = true;
    notify();
  });
  body.on('error', (error: unknown) => {
    failure = error;
    notify();
  });
  body.on('close', () => {
    if (!ended && failure === undefined) failure = new Error('upstream body closed before its end');
    notify();
  });
  // Destroyed before this first read (a prefetch aborted at shutdown, a reset in the gap): its
  // events are spent, and waiting for them would never end.
  if (body.destroyed && !body.readableEnded) failure = body.errored ?? new Error('upstream body closed before its end');
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.byteLength;
        if (queued < maxQueuedBytes && body.isPaused()) body.resume();
        yield chunk;
        continue;
      }
      if (failure !== undefined) throw unavailable(where, failure);
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    if (!body.destroyed) body.destroy();
  }
}
