/**
 * @module oci/ranges
 * The two range grammars of the distribution API: RFC 9110 `Range: bytes=…`
 * on blob GETs, and the bare `<start>-<end>` of upload chunks.
 */
import type { ByteRange, ChunkRange } from './image-source.js';

export type RangeRequest = { kind: 'full' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' };

/**
 * Reads a Range header against a blob of `size` bytes. Only one range is
 * honoured; a header we cannot read, or one asking for several ranges, is
 * ignored and the whole blob sent, as RFC 9110 §14.2 allows.
 */
export function parseByteRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'full' };
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return { kind: 'full' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    // Suffix range: the last N bytes.
    const length = Number(last);
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(size - length, 0), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (!Number.isSafeInteger(start) || start >= size || (last !== '' && Number(last) < start)) {
    return { kind: 'unsatisfiable' };
  }
  return { kind: 'partial', range: { start, end } };
}

/**
 * Whether a Range header may be honoured under `If-Range` (RFC 9110 §13.1.5): with no
 * If-Range, yes; with an entity tag, only when it is a strong match for `etag`; with a date
 * (a blob answer has no Last-Modified) or a weak tag, never. When it does not hold, the Range
 * is ignored and the whole blob sent, so a client resuming a download of other bytes starts over.
 */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  if (header === undefined) return true;
  return header.trim() === etag;
}

/** Upload chunk Content-Range: `<start>-<end>` inclusive (spec); a `bytes ` prefix is tolerated. */
export function parseChunkRange(header: string | undefined): ChunkRange | undefined | 'invalid' {
  if (header === undefined || header === '') return undefined;
  const match = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (match === null) return 'invalid';
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return 'invalid';
  return { start, end };
}

/** The Range header of upload responses: "0-<last byte>", no "bytes=" (spec); "0-0" when empty, as clients expect. */
export function formatUploadRange(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}
