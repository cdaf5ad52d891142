/**
 * @module test/conformance/seeded-random
 * Deterministic random bytes and strings for the conformance fixtures: SHA-256 in counter mode
 * over a logged seed, one independent stream per name. Set CONFORMANCE_SEED to replay a run.
 */
import { createHash, randomBytes } from 'node:crypto';

/** The run's seed: CONFORMANCE_SEED, or 8 fresh random bytes in hex. */
export function conformanceSeed(): string {
  const fromEnv = process.env['CONFORMANCE_SEED'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : randomBytes(8).toString('hex');
}

export class SeededRandom {
  private counter = 0;
  private pool: Buffer = Buffer.alloc(0);

  constructor(
    readonly seed: string,
    readonly stream: string,
  ) {}

  bytes(length: number): Buffer {
    const chunks: Buffer[] = [this.pool];
    let have = this.pool.length;
    while (have < length) {
      const block = createHash('sha256').update(`${this.seed}\0${this.stream}\0${this.counter++}`).digest();
      chunks.push(block);
      have += block.length;
    }
    const all = Buffer.concat(chunks);
    this.pool = all.subarray(length);
    return all.subarray(0, length);
  }

  /** A uniform integer in [0, max). */
  int(max: number): number {
    const limit = Math.floor(0x1_0000_0000 / max) * max;
    for (;;) {
      const value = this.bytes(4).readUInt32BE(0);
      if (value < limit) return value % max;
    }
  }

  /** A string of `length` characters drawn from `alphabet`. */
  string(length: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }

  /** Go 1.24 `crypto/rand.Text()`: 26 characters of the base32 alphabet. */
  text(): string {
    return this.string(26, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567');
  }

  /** A random non-negative 63-bit integer as a decimal string (Go's `rand.Int(…, MaxInt64)`). */
  int63(): string {
    return (this.bytes(8).readBigUInt64BE(0) & 0x7fff_ffff_ffff_ffffn).toString();
  }

  /** An RFC 4122 version 4 UUID string. */
  uuid(): string {
    const b = Buffer.from(this.bytes(16));
    b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
    b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
    const hex = b.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}
