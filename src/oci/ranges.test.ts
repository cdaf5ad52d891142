import { describe, expect, it } from 'vitest';
import { formatUploadRange, ifRangeHolds, parseByteRange, parseChunkRange } from './ranges.js';

describe('parseByteRange', () => {
  const size = 2048;
  it('reads the forms the conformance suite sends', () => {
    expect(parseByteRange('bytes=500-1499', size)).toEqual({ kind: 'partial', range: { start: 500, end: 1499 } });
    expect(parseByteRange('bytes=500-', size)).toEqual({ kind: 'partial', range: { start: 500, end: 2047 } });
    expect(parseByteRange('bytes=-500', size)).toEqual({ kind: 'partial', range: { start: 1548, end: 2047 } });
    expect(parseByteRange('bytes=2000-5000', size)).toEqual({ kind: 'partial', range: { start: 2000, end: 2047 } });
  });
  it('refuses what cannot be satisfied', () => {
    expect(parseByteRange('bytes=500-0', size).kind).toBe('unsatisfiable');
    expect(parseByteRange('bytes=5000-10000', size).kind).toBe('unsatisfiable');
    expect(parseByteRange('bytes=2048-', size).kind).toBe('unsatisfiable');
    expect(parseByteRange('bytes=-0', size).kind).toBe('unsatisfiable');
    expect(parseByteRange('bytes=0-', 0).kind).toBe('unsatisfiable');
  });
  it('serves the whole blob for absent, unreadable or multi-range headers (RFC 9110 lets a server ignore Range)', () => {
    expect(parseByteRange(undefined, size).kind).toBe('full');
    expect(parseByteRange('bytes=0-1,5-6', size).kind).toBe('full');
    expect(parseByteRange('items=0-1', size).kind).toBe('full');
    expect(parseByteRange('bytes=-', size).kind).toBe('full');
  });
  it('takes a suffix longer than the blob as the whole blob', () => {
    expect(parseByteRange('bytes=-5000', size)).toEqual({ kind: 'partial', range: { start: 0, end: 2047 } });
  });
});

describe('ifRangeHolds', () => {
  const etag = '"sha256:aa"';
  it('holds with no If-Range, and with a strong match of the ETag', () => {
    expect(ifRangeHolds(undefined, etag)).toBe(true);
    expect(ifRangeHolds('"sha256:aa"', etag)).toBe(true);
    expect(ifRangeHolds(' "sha256:aa" ', etag)).toBe(true);
  });
  it('does not hold for another tag, a weak tag, a bare digest or a date', () => {
    expect(ifRangeHolds('"sha256:bb"', etag)).toBe(false);
    expect(ifRangeHolds('W/"sha256:aa"', etag)).toBe(false);
    expect(ifRangeHolds('sha256:aa', etag)).toBe(false);
    expect(ifRangeHolds('Sun, 06 Nov 1994 08:49:37 GMT', etag)).toBe(false);
    expect(ifRangeHolds('', etag)).toBe(false);
  });
});

describe('parseChunkRange', () => {
  it('reads start-end and tolerates a bytes prefix', () => {
    expect(parseChunkRange('0-21')).toEqual({ start: 0, end: 21 });
    expect(parseChunkRange('bytes 22-41')).toEqual({ start: 22, end: 41 });
    expect(parseChunkRange('bytes 22-41/42')).toEqual({ start: 22, end: 41 });
    expect(parseChunkRange(undefined)).toBeUndefined();
  });
  it('marks malformed or backwards ranges invalid', () => {
    expect(parseChunkRange('abc')).toBe('invalid');
    expect(parseChunkRange('10-5')).toBe('invalid');
    expect(parseChunkRange('-5')).toBe('invalid');
  });
});

describe('formatUploadRange', () => {
  it('answers 0-0 for an empty upload, never 0--1 (docker rejects end < start)', () => {
    expect(formatUploadRange(0)).toBe('0-0');
    expect(formatUploadRange(22)).toBe('0-21');
  });
});
