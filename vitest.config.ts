import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // The fault and load suite has its own run: npm run test:faults (vitest.faults.config.ts).
    exclude: [...configDefaults.exclude, 'test/faults/**'],
    // Tests start real servers and clients (distribution, skopeo, containerd, podman).
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Child processes, not worker threads: better-sqlite3 is a native addon and some tests
    // spawn daemons; a fork can be killed cleanly.
    pool: 'forks',
    fileParallelism: true,
    // Two cores: two test files at a time, leaving the servers under test room to run.
    maxWorkers: 2,
  },
});
