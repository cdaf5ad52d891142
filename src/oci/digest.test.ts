import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createDigester,
  digestAlgorithm,
  digestEncoded,
  digestOf,
  formatDigest,
  isDigestAlgorithm,
  parseDigest,
  requireDigest,
  type Digest,
} from './digest.js';
import { isOciError } from './errors.js';

const hex64 = 'a'.repeat(64);
const hex128 = 'b'.repeat(128);
// Known answers (FIPS 180-2 test vectors): a wrong algorithm or encoding cannot match them.
const sha256Abc = 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const sha512Abc =
  'sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';
const sha256Empty = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function refusal(value: string | undefined | null): { code: string; message: string; detail: unknown } {
  try {
    requireDigest(value);
  } catch (error) {
    if (isOciError(error)) return { code: error.code, message: error.message, detail: error.detail };
    throw error;
  }
  throw new Error(`requireDigest(${String(value)}) accepted it`);
}

describe('parseDigest', () => {
  it('accepts sha256 and sha512 with the exact length of lowercase hex', () => {
    expect(parseDigest(`sha256:${hex64}`)).toBe(`sha256:${hex64}`);
    expect(parseDigest(`sha512:${hex128}`)).toBe(`sha512:${hex128}`);
    expect(parseDigest(sha256Abc)).toBe(sha256Abc);
  });

  it.each([
    ['one hex digit short', `sha256:${hex64.slice(1)}`],
    ['one hex digit long', `sha256:${hex64}a`],
    ['uppercase hex', `sha256:${hex64.toUpperCase()}`],
    ['a non-hex character', `sha256:${hex64.slice(1)}g`],
    ['sha512 length under sha256', `sha256:${hex128}`],
    ['sha256 length under sha512', `sha512:${hex64}`],
    ['a sha512 one digit long', `sha512:${hex128}b`],
    ['a sha512 with a leading non-hex character', `sha512:g${hex128}`],
    ['an algorithm we cannot verify', `md5:${hex64}`],
    ['a sha256 variant', `sha256+b64u:${hex64}`],
    ['no algorithm', `:${hex64}`],
    ['no encoded part', 'sha256:'],
    ['no colon', `sha256${hex64}`],
    ['two colons', `sha256:${hex64}:`],
    ['leading space', ` sha256:${hex64}`],
    ['trailing newline', `sha256:${hex64}\n`],
    ['uppercase algorithm', `SHA256:${hex64}`],
    ['empty', ''],
  ])('refuses %s', (_what, value) => {
    expect(parseDigest(value)).toBeUndefined();
  });

  it('refuses anything over 200 characters before looking at it', () => {
    // 201 characters that the grammar alone would take.
    expect(parseDigest(`sha256:${'a'.repeat(194)}`)).toBeUndefined();
    expect(`sha256:${'a'.repeat(193)}`).toHaveLength(200);
  });
});

describe('requireDigest', () => {
  it('returns the digest when it parses', () => {
    expect(requireDigest(sha256Abc)).toBe(sha256Abc);
  });

  it('says a digest is required when there is none', () => {
    for (const value of [undefined, null, '']) {
      expect(refusal(value)).toEqual({ code: 'DIGEST_INVALID', message: 'a digest is required', detail: undefined });
    }
  });

  it('tells an unsupported algorithm from a malformed digest', () => {
    expect(refusal(`md5:${hex64}`)).toEqual({
      code: 'DIGEST_INVALID',
      message: 'unsupported digest algorithm (sha256 and sha512 are)',
      detail: { digest: `md5:${hex64}` },
    });
    expect(refusal(`sha256:${hex64.slice(2)}`)).toEqual({
      code: 'DIGEST_INVALID',
      message: 'invalid digest',
      detail: { digest: `sha256:${hex64.slice(2)}` },
    });
    expect(refusal('not a digest').message).toBe('invalid digest');
    // The general grammar, anchored at both ends, decides which of the two it is.
    expect(refusal('md5:abc!').message).toBe('invalid digest');
    expect(refusal('!md5:abc').message).toBe('invalid digest');
    expect(refusal('sha256+b64u:abc').message).toBe('unsupported digest algorithm (sha256 and sha512 are)');
    expect(refusal('sha256+:abc').message).toBe('invalid digest');
    const long = `x:${'a'.repeat(300)}`;
    expect(refusal(long).detail).toEqual({ digest: long.slice(0, 200) });
  });
});

describe('digest helpers', () => {
  it('computes known answers for sha256 and sha512', () => {
    expect(digestOf(Buffer.from('abc'))).toBe(sha256Abc);
    expect(digestOf(Buffer.from('abc'), 'sha512')).toBe(sha512Abc);
    expect(digestOf(new Uint8Array(0))).toBe(sha256Empty);
    const hash = createDigester('sha256').update('a').update('bc');
    expect(formatDigest('sha256', hash)).toBe(sha256Abc);
    expect(formatDigest('sha512', createDigester('sha512').update('abc'))).toBe(sha512Abc);
    expect(createHash('sha256').update('abc').digest('hex')).toBe(digestEncoded(sha256Abc as Digest));
  });

  it('splits a digest into algorithm and encoded part', () => {
    expect(digestAlgorithm(sha512Abc as Digest)).toBe('sha512');
    expect(digestAlgorithm(sha256Abc as Digest)).toBe('sha256');
    expect(digestEncoded(sha256Abc as Digest)).toBe(sha256Abc.slice(7));
    expect(digestEncoded(sha512Abc as Digest)).toHaveLength(128);
  });

  it('knows exactly the algorithms it verifies', () => {
    expect(isDigestAlgorithm('sha256')).toBe(true);
    expect(isDigestAlgorithm('sha512')).toBe(true);
    for (const other of ['sha384', 'md5', '', 'SHA256', 'sha256 ']) expect(isDigestAlgorithm(other)).toBe(false);
  });
});
