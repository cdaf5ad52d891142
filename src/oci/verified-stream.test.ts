/**
 * verifyStream's promise (ADR 0005): a consumer never sees a complete body with the wrong bytes. The
 * last chunk is held back until size and digest matched, so a mismatch reaches the consumer as an
 * error with the body short of its end, never as every byte followed by an error a writer might
 * not wait for (round 8b: yielding each chunk as it came passed every import and export test,
 * since the writers there also wait for the generator's end).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Digest } from './digest.js';
import { OciError } from './errors.js';
import { verifyStream } from './verified-stream.js';

const chunks = [Buffer.from('first chunk, '), Buffer.from('second chunk, '), Buffer.from('the last one')];
const whole = Buffer.concat(chunks);
const digest = `sha256:${createHash('sha256').update(whole).digest('hex')}` as Digest;

async function* source(parts: readonly Buffer[]): AsyncGenerator<Uint8Array> {
  yield* parts;
}

/** What the consumer received before the stream ended or failed, and how it ended. */
async function consume(
  parts: readonly Buffer[],
  target: { digest: Digest; size: number; label?: string },
): Promise<{ received: Buffer; error?: unknown }> {
  const seen: Uint8Array[] = [];
  try {
    for await (const chunk of verifyStream(source(parts), target)) seen.push(chunk);
  } catch (error) {
    return { received: Buffer.concat(seen), error };
  }
  return { received: Buffer.concat(seen) };
}

describe('verifyStream', () => {
  it('passes every byte of a body that matches its size and digest', async () => {
    const { received, error } = await consume(chunks, { digest, size: whole.length });
    expect(error).toBeUndefined();
    expect(received.equals(whole)).toBe(true);
  });

  it('holds back the last chunk of a body whose digest does not match: the consumer never has it all', async () => {
    const flipped = Buffer.from(chunks[2] as Buffer);
    flipped[0] = (flipped[0] as number) ^ 0xff;
    const { received, error } = await consume([chunks[0] as Buffer, chunks[1] as Buffer, flipped], {
      digest,
      size: whole.length,
    });
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe('DIGEST_INVALID');
    // Only what came before the last chunk went out.
    expect(received.equals(Buffer.concat([chunks[0] as Buffer, chunks[1] as Buffer]))).toBe(true);
  });

  it('holds back the last chunk of a truncated body', async () => {
    const { received, error } = await consume([chunks[0] as Buffer, chunks[1] as Buffer], {
      digest,
      size: whole.length,
    });
    expect((error as OciError).code).toBe('SIZE_INVALID');
    expect(received.equals(chunks[0] as Buffer)).toBe(true);
  });

  it('refuses a body longer than its size at the chunk that passes it, before yielding that chunk', async () => {
    const { received, error } = await consume([...chunks, Buffer.from('more')], { digest, size: whole.length });
    expect((error as OciError).code).toBe('SIZE_INVALID');
    expect(received.equals(Buffer.concat([chunks[0] as Buffer, chunks[1] as Buffer]))).toBe(true);
  });

  it("checks a sha512 digest with sha512 (round 13d: the algorithm is the digest's, not always sha256)", async () => {
    const sha512 = `sha512:${createHash('sha512').update(whole).digest('hex')}` as Digest;
    const { received, error } = await consume(chunks, { digest: sha512, size: whole.length });
    expect(error).toBeUndefined();
    expect(received.equals(whole)).toBe(true);
    const wrong = await consume([Buffer.from('other bytes')], { digest: sha512, size: 11 });
    expect(wrong.error).toMatchObject({ code: 'DIGEST_INVALID' });
  });

  it('passes an empty body that matches (an empty layer) as no chunk at all', async () => {
    const empty = `sha256:${createHash('sha256').digest('hex')}` as Digest;
    const seen: unknown[] = [];
    for await (const chunk of verifyStream(source([]), { digest: empty, size: 0 })) seen.push(chunk);
    expect(seen).toEqual([]);
  });
});

describe('verifyStream errors (one CLI line, an OCI error body)', () => {
  const size = whole.length;

  it('a longer body: SIZE_INVALID naming the blob by its label, with digest and expected size', async () => {
    const { error } = await consume([...chunks, Buffer.from('more')], { digest, size, label: 'blobs/sha256/ab' });
    expect(error).toMatchObject({
      code: 'SIZE_INVALID',
      message: `blobs/sha256/ab: more than the expected ${size} bytes`,
      detail: { digest, expected: size },
    });
  });

  it('a truncated body: SIZE_INVALID with the bytes received, named by its digest when it has no label', async () => {
    const short = (chunks[0] as Buffer).length;
    const { error } = await consume([chunks[0] as Buffer], { digest, size });
    expect(error).toMatchObject({
      code: 'SIZE_INVALID',
      message: `${digest}: ${short} bytes, expected ${size} (truncated)`,
      detail: { digest, expected: size, received: short },
    });
  });

  it('wrong bytes: DIGEST_INVALID with the digest computed', async () => {
    const other = Buffer.alloc(size, 7);
    const computed = `sha256:${createHash('sha256').update(other).digest('hex')}`;
    const { error } = await consume([other], { digest, size, label: 'layer.tar' });
    expect(error).toMatchObject({
      code: 'DIGEST_INVALID',
      message: `layer.tar: content does not match its digest (computed ${computed})`,
      detail: { expected: digest, computed },
    });
    const unlabelled = await consume([other], { digest, size });
    expect((unlabelled.error as OciError).message).toBe(
      `${digest}: content does not match its digest (computed ${computed})`,
    );
  });
});
