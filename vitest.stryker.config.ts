import { defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutate` runs (stryker.config.mjs picks them per scope and passes the list in
 * WHARF_MUTATE_TESTS). Tests that spawn wharf as a child process are left out: the mutant is
 * active only inside the test-runner process, so a spawned server runs the unmutated code.
 */
const tests = JSON.parse(process.env['WHARF_MUTATE_TESTS'] ?? '[]') as string[];
if (tests.length === 0)
  throw new Error('vitest.stryker.config.ts: run through `npm run mutate` (WHARF_MUTATE_TESTS unset)');

export default defineConfig({
  test: {
    include: tests,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
