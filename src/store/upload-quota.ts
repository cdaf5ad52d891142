/**
 * @module store/upload-quota
 * How many upload sessions are open, in all and per client address, so that
 * POSTs nobody finishes cannot pile up sessions (rows and files) without end.
 * The index holds the total; the owners are kept in memory only: sessions that
 * survived a restart count towards the total but towards no client.
 */
import { OciError } from '../oci/errors.js';

export interface UploadLimits {
  /** Open sessions in all; the POST after that answers 429. */
  maxSessions: number;
  /** Open sessions one client address may hold. */
  maxSessionsPerClient: number;
}

export const defaultUploadLimits: UploadLimits = { maxSessions: 1000, maxSessionsPerClient: 100 };

/** What a client is told to wait before trying again: sessions free up as pushes finish or expire. */
const retryAfterSeconds = 60;

export class UploadQuota {
  /** Session id → the client address that opened it. */
  private readonly owners = new Map<string, string>();
  private readonly perClient = new Map<string, number>();
  /** Sessions reserved but not yet in the index (their file is being created). */
  private starting = 0;

  constructor(private readonly limits: UploadLimits) {}

  /** The refusal a new session would get with `open` sessions in the index, or undefined when there is room. */
  refusal(open: number, client: string | undefined): OciError | undefined {
    if (open + this.starting >= this.limits.maxSessions) {
      return tooMany(`too many open upload sessions (${this.limits.maxSessions}); retry later`);
    }
    if (client !== undefined && (this.perClient.get(client) ?? 0) >= this.limits.maxSessionsPerClient) {
      return tooMany(
        `this client has ${this.limits.maxSessionsPerClient} open upload sessions; finish or cancel some first`,
      );
    }
    return undefined;
  }

  /**
   * Takes a slot synchronously, right after refusal() said there was one, so that
   * concurrent POSTs cannot all pass the same check. Returns how to settle it.
   */
  reserve(client: string | undefined): { opened(id: string): void; abandon(): void } {
    this.starting++;
    if (client !== undefined) this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      this.starting--;
    };
    return {
      opened: (id) => {
        settle();
        if (client !== undefined) this.owners.set(id, client);
      },
      abandon: () => {
        settle();
        if (client !== undefined) this.decrement(client);
      },
    };
  }

  /**
   * Entries kept in memory: owners of open sessions, and clients with at least one. Both go back to 0
   * once every session is released, so the bookkeeping is bounded by the open sessions (for tests).
   */
  get tracked(): { owners: number; clients: number } {
    return { owners: this.owners.size, clients: this.perClient.size };
  }

  /** A session finished, was cancelled or expired: its slot is free. */
  release(id: string): void {
    const client = this.owners.get(id);
    if (client === undefined) return;
    this.owners.delete(id);
    this.decrement(client);
  }

  private decrement(client: string): void {
    const count = (this.perClient.get(client) ?? 1) - 1;
    if (count <= 0) this.perClient.delete(client);
    else this.perClient.set(client, count);
  }
}

function tooMany(message: string): OciError {
  return new OciError('TOOMANYREQUESTS', message, { headers: { 'Retry-After': String(retryAfterSeconds) } });
}
