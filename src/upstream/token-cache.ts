/**
 * @module upstream/token-cache
 * Bearer tokens per (realm, service, scope), reused until shortly before they expire, with
 * concurrent fetches for one key merged into a single request (single-flight): a burst of pulls
 * of one repository costs one token request, not one per layer.
 */

/** Stop using a token this long before it expires. A token checked valid at the last moment would
 * still be in flight, or queued behind other requests, when it expires, and the registry's clock may
 * run ahead of ours; 10 s covers both without discarding much of a token's life (60 s at least). */
export const tokenExpiryMarginMs = 10_000;

/** docker's client treats expires_in under 60 s (or absent) as 60 s (distribution token.md:
 * "the minimum ... is 60 seconds"), so registries can rely on it and so do we. */
export const minTokenLifetimeMs = 60_000;

/** One entry per repository pulled; past this, expired entries are dropped, then the oldest. */
const maxEntries = 1_000;

export interface IssuedToken {
  token: string;
  /** As the token service said (expires_in), before clamping. */
  lifetimeMs: number;
}

interface Entry {
  token: string;
  expiresAt: number;
}

export class TokenCache {
  private readonly tokens = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<string>>();

  private generation = 0;

  constructor(private readonly now: () => number) {}

  static key(realm: string, service: string | undefined, scope: string): string {
    return JSON.stringify([realm, service ?? '', scope]);
  }

  /** A token still good for at least tokenExpiryMarginMs, else undefined. */
  cached(key: string): string | undefined {
    const entry = this.tokens.get(key);
    if (entry === undefined) return undefined;
    if (this.now() < entry.expiresAt - tokenExpiryMarginMs) return entry.token;
    this.tokens.delete(key);
    return undefined;
  }

  /** Forgets `token` after the registry refused it, unless a newer one has replaced it already. */
  invalidate(key: string, token: string): void {
    if (this.tokens.get(key)?.token === token) this.tokens.delete(key);
  }

  /** The cached token, or the result of `fetchToken`, shared with every caller asking meanwhile. */
  async get(key: string, fetchToken: () => Promise<IssuedToken>): Promise<string> {
    const cached = this.cached(key);
    if (cached !== undefined) return cached;
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    // Lifetime counts from before the request: the service's clock started no earlier than that.
    const requestedAt = this.now();
    const generation = this.generation;
    const fetching = fetchToken()
      .then((issued) => {
        if (generation === this.generation) {
          this.store(key, issued.token, requestedAt + Math.max(issued.lifetimeMs, minTokenLifetimeMs));
        }
        return issued.token;
      })
      .finally(() => {
        if (this.inflight.get(key) === fetching) this.inflight.delete(key);
      });
    this.inflight.set(key, fetching);
    return fetching;
  }

  /**
   * Forgets every token (the credentials changed). A fetch still running was made with the old
   * ones: its token is handed to whoever already waits for it, but not kept, and no new caller joins it.
   */
  clear(): void {
    this.tokens.clear();
    this.inflight.clear();
    this.generation++;
  }

  private store(key: string, token: string, expiresAt: number): void {
    if (this.tokens.size >= maxEntries) {
      const now = this.now();
      for (const [k, entry] of this.tokens) if (entry.expiresAt <= now) this.tokens.delete(k);
      const oldest = this.tokens.keys().next();
      if (this.tokens.size >= maxEntries && oldest.done !== true) this.tokens.delete(oldest.value);
    }
    this.tokens.set(key, { token, expiresAt });
  }
}
