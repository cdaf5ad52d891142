import { describe, expect, it } from 'vitest';
import { defaultMaxConnections, readOpenFileLimit } from './open-file-limit.js';

const limits = `Limit                     Soft Limit           Hard Limit           Units
Max processes             63704                63704                processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('defaultMaxConnections', () => {
  it('reads the soft open-file limit', () => {
    expect(readOpenFileLimit(limits)).toBe(1024);
    expect(readOpenFileLimit('Max open files            unlimited            unlimited            files\n')).toBe(
      undefined,
    );
  });

  it('leaves three descriptors per connection and 128 spare, within 64 and 10,000', () => {
    expect(defaultMaxConnections(1024)).toBe(298);
    expect(defaultMaxConnections(20_000)).toBe(6624);
    expect(defaultMaxConnections(1_048_576)).toBe(10_000);
    expect(defaultMaxConnections(256)).toBe(64);
  });
});
