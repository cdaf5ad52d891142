/**
 * @module store/manifest-cache
 * Manifest bytes are immutable per digest and small, and tag pulls ask for the
 * same few again and again: keep the most recent in memory, bounded by bytes.
 */
import type { Digest } from '../oci/digest.js';

export class ManifestCache {
  private readonly entries = new Map<Digest, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(digest: Digest): Buffer | undefined {
    const hit = this.entries.get(digest);
    if (hit !== undefined) {
      // Map keeps insertion order: re-insert to mark as most recently used.
      this.entries.delete(digest);
      this.entries.set(digest, hit);
    }
    return hit;
  }

  set(digest: Digest, bytes: Buffer): void {
    if (bytes.byteLength > this.maxBytes || this.entries.has(digest)) return;
    this.entries.set(digest, bytes);
    this.bytes += bytes.byteLength;
    for (const [oldest, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= value.byteLength;
    }
  }

  delete(digest: Digest): void {
    const hit = this.entries.get(digest);
    if (hit === undefined) return;
    this.entries.delete(digest);
    this.bytes -= hit.byteLength;
  }

  /** What the cache holds now, counted from its entries (for tests of the bound). */
  get held(): { entries: number; bytes: number } {
    let bytes = 0;
    for (const value of this.entries.values()) bytes += value.byteLength;
    return { entries: this.entries.size, bytes };
  }
}
