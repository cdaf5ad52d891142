/**
 * @module proxy/negative-cache
 * Remembers "the upstream said not found" for a short while, so a client
 * retrying a missing tag does not become a stream of upstream requests.
 */
export class NegativeCache {
  private readonly until = new Map<string, number>();

  constructor(private readonly maxEntries = 10_000) {}

  has(key: string, now: number): boolean {
    const expiry = this.until.get(key);
    if (expiry === undefined) return false;
    if (expiry > now) return true;
    this.until.delete(key);
    return false;
  }

  add(key: string, ttlMs: number, now: number): void {
    if (ttlMs <= 0) return;
    if (this.until.size >= this.maxEntries) {
      // Oldest first: Map iteration is insertion order.
      const oldest = this.until.keys().next().value;
      if (oldest !== undefined) this.until.delete(oldest);
    }
    this.until.set(key, now + ttlMs);
  }

  delete(key: string): void {
    this.until.delete(key);
  }
}
