import { describe, expect, it } from 'vitest';
import { parseWharfStatus } from './registry-cache-marks.js';

describe('parseWharfStatus (RFC 9211 Cache-Status)', () => {
  it("reads wharf's member, the one nearest the client when there are several", () => {
    expect(parseWharfStatus('wharf; hit')).toEqual(['hit']);
    expect(parseWharfStatus('wharf; fwd=miss; stored')).toEqual(['fwd=miss', 'stored']);
    expect(parseWharfStatus('wharf; fwd=miss, cdn; hit, wharf; hit')).toEqual(['hit']);
    expect(parseWharfStatus('"wharf"; hit')).toEqual(['hit']);
  });

  it('is undefined without a wharf member or a header', () => {
    expect(parseWharfStatus(undefined)).toBeUndefined();
    expect(parseWharfStatus('cdn; hit')).toBeUndefined();
    expect(parseWharfStatus('wharfish; hit')).toBeUndefined();
  });
});
