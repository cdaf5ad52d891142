/**
 * @module store/space-limit
 * store.maxSize: before a write adds bytes to the store, it reserves them.
 * While the store, the reservations in flight and the new bytes stay under
 * the limit, that is all (no eviction on every write). A write that would pass
 * it runs one eviction, down to the low-water mark, so the next writes again
 * cost nothing; evictions run one at a time. A write that still does not fit is
 * refused with 507 before a byte of it is kept.
 */
import { OciError } from '../oci/errors.js';

export interface SpaceSettings {
  /** The limit, in bytes. */
  maxBytes: number;
  /** An eviction frees down to this (below maxBytes). */
  lowWaterBytes: number;
}

/** Bytes counted against the limit until the write is in the index (then the index counts them). */
export interface Reservation {
  release(): void;
}

const nothingReserved: Reservation = { release: () => undefined };

export class SpaceLimit {
  private reserved = 0;
  private evicting: Promise<unknown> = Promise.resolve();

  constructor(
    readonly settings: SpaceSettings | undefined,
    /** Bytes of the files the index holds now. */
    private readonly stored: () => number,
    /** Evicts at least `need` bytes if it can; resolves to what it freed. */
    private readonly evict: (need: number) => Promise<number>,
  ) {}

  /** Bytes stored plus reserved: what the limit is checked against. */
  get used(): number {
    return this.stored() + this.reserved;
  }

  async reserve(bytes: number): Promise<Reservation> {
    const settings = this.settings;
    if (settings === undefined) return nothingReserved;
    if (bytes > settings.maxBytes) throw tooLarge(bytes, settings.maxBytes, this.used);
    if (this.used + bytes > settings.maxBytes) {
      const run = this.evicting.then(async () => {
        // Another write's eviction may have made room meanwhile.
        if (this.used + bytes <= settings.maxBytes) return;
        await this.evict(this.used + bytes - settings.lowWaterBytes);
      });
      this.evicting = run.catch(() => undefined);
      await run;
      if (this.used + bytes > settings.maxBytes) throw tooLarge(bytes, settings.maxBytes, this.used);
    }
    this.reserved += bytes;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.reserved -= bytes;
      },
    };
  }
}

/** 507 Insufficient Storage: the spec has no code for it; UNAVAILABLE with the status, as for a full disk. */
function tooLarge(bytes: number, maxBytes: number, used: number): OciError {
  return new OciError(
    'UNAVAILABLE',
    `store.maxSize reached: ${bytes} more bytes do not fit in ${maxBytes} (${used} in use) even after evicting ` +
      'every image that may go; nothing was kept',
    { status: 507, detail: { size: bytes, maxSize: maxBytes, used } },
  );
}
