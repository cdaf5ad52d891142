/**
 * @module store/verified-files
 * Which committed blob files this process has read whole and found to match their digest,
 * remembered by file identity, so a hot blob is hashed on its first full read rather than on
 * every one (ADR 0009). Hashing every byte served cost about three times the CPU of sending it.
 *
 * The identity is everything that changes when the file's bytes are changed through the
 * filesystem: device and inode (a file renamed over it), size, and the modification and change
 * times in nanoseconds (a write in place; the change time cannot be set back by `touch`). A file
 * whose identity differs from the remembered one is verified again on its next full read. What
 * this cannot see is bits rotting under an unchanged identity: for that an entry is trusted for
 * at most `maxAgeMs` (then the next full read hashes again), and `wharf verify` scrubs.
 *
 * Bounded: at most `maxEntries` digests, least recently used first out (a forgotten one is
 * simply hashed again on its next full read).
 *
 * One hash per file, however many read it at once: the first reader of a file not trusted starts
 * one hash of it in the background, from its own descriptor at disk speed (not at any client's
 * pace, so a slow client holds nobody back), and every reader of that file waits for the verdict at
 * its last byte. Twenty clients of a cold-started 1 GiB blob each hashed it before this (20 GiB,
 * twice distribution's time in bench scenario 6, 30 November).
 */
import type { Digest } from '../oci/digest.js';

/** About 200 bytes an entry: a few MB at most. */
export const defaultMaxVerifiedFiles = 16_384;
/** Bounds how long bit rot under an unchanged identity can go unseen by serve. */
export const defaultVerifiedMaxAgeMs = 60 * 60 * 1000;

/** What the hash of a file found; 'abandoned' when it could not finish (readers then hash it themselves). */
export type Verdict = 'verified' | 'corrupt' | 'abandoned';

export class VerifiedFiles {
  private readonly entries = new Map<Digest, { identity: string; at: number }>();
  /** Verifications in progress, by digest and file identity. */
  private readonly running = new Map<string, Promise<Verdict>>();
  /**
   * Full reads that hashed the file, that trusted a remembered identity, that waited for another's
   * hash, and that hashed the file they hold because the shared hash could not finish.
   */
  readonly counts = { hashed: 0, trusted: 0, joined: 0, own: 0 };

  constructor(
    private readonly maxEntries = defaultMaxVerifiedFiles,
    private readonly maxAgeMs = defaultVerifiedMaxAgeMs,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the file with this identity was verified recently (a hit counts as recent use). */
  trusts(digest: Digest, identity: string): boolean {
    const entry = this.entries.get(digest);
    if (entry === undefined) return false;
    if (entry.identity !== identity || this.now() - entry.at > this.maxAgeMs) {
      this.entries.delete(digest);
      return false;
    }
    this.entries.delete(digest);
    this.entries.set(digest, entry);
    return true;
  }

  /** The file with this identity was just read whole and matched its digest. */
  remember(digest: Digest, identity: string): void {
    this.entries.delete(digest);
    this.entries.set(digest, { identity, at: this.now() });
    // Oldest first (a Map keeps insertion order; a hit re-inserts); deleting while iterating is safe.
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  /** The verdict of the hash of this very file running now, if one is. */
  verdictOf(digest: Digest, identity: string): Promise<Verdict> | undefined {
    return this.running.get(`${digest} ${identity}`);
  }

  /** Runs `hash` for the file once, shared by every reader that asks meanwhile; a match is remembered. */
  verify(digest: Digest, identity: string, hash: () => Promise<Verdict>): Promise<Verdict> {
    const key = `${digest} ${identity}`;
    const verdict = hash()
      .catch((): Verdict => 'abandoned')
      .then((outcome) => {
        this.running.delete(key);
        if (outcome === 'verified') this.remember(digest, identity);
        return outcome;
      });
    this.running.set(key, verdict);
    return verdict;
  }

  forget(digest: Digest): void {
    this.entries.delete(digest);
  }

  get size(): number {
    return this.entries.size;
  }
}
