/**
 * @module oci/digest
 * Digests as branded strings, parsed once at the edge (image-spec descriptor.md §Digests).
 */
import { createHash, type Hash } from 'node:crypto';
import { OciError } from './errors.js';

export type Digest = string & { readonly __brand: 'Digest' };
export type DigestAlgorithm = 'sha256' | 'sha512';

const encodedPattern: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

// The general grammar: algorithm ":" encoded. Anything matching it but with an
// algorithm we cannot verify is refused as unsupported rather than malformed.
const grammar = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigestAlgorithm(value: string): value is DigestAlgorithm {
  return value === 'sha256' || value === 'sha512';
}

/** Parses a digest string; undefined when it is not a digest we can verify. */
export function parseDigest(value: string): Digest | undefined {
  // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: cost guards; the anchored per-algorithm patterns below refuse the same strings.
  if (value.length > 200 || !grammar.test(value)) return undefined;
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  if (!isDigestAlgorithm(algorithm)) return undefined;
  return encodedPattern[algorithm].test(value.slice(colon + 1)) ? (value as Digest) : undefined;
}

/** Like parseDigest, but a refusal is the spec's DIGEST_INVALID. */
export function requireDigest(value: string | undefined | null): Digest {
  if (value === undefined || value === null || value === '') {
    throw new OciError('DIGEST_INVALID', 'a digest is required');
  }
  const digest = parseDigest(value);
  if (digest === undefined) {
    const known = grammar.test(value) && !isDigestAlgorithm(value.slice(0, value.indexOf(':')));
    throw new OciError(
      'DIGEST_INVALID',
      known ? 'unsupported digest algorithm (sha256 and sha512 are)' : 'invalid digest',
      { detail: { digest: value.slice(0, 200) } },
    );
  }
  return digest;
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestEncoded(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function formatDigest(algorithm: DigestAlgorithm, hash: Hash): Digest {
  return `${algorithm}:${hash.digest('hex')}` as Digest;
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return formatDigest(algorithm, createHash(algorithm).update(bytes));
}
