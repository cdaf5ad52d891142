import { defineConfig } from 'vitest/config';

/**
 * The fault and load suite (`npm run test:faults`): kill -9 mid-write, a full disk, fuzzed
 * input, 1,000 connections. Kept out of `npm test` (vitest.config.ts excludes test/faults/):
 * it needs root for the tmpfs mount and owns the machine's CPU while the load test runs.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One file at a time: the load test measures memory and must not share two cores with a fuzzer.
    fileParallelism: false,
    maxWorkers: 1,
  },
});
