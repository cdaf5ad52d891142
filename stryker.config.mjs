/**
 * Mutation testing (`npm run mutate`, issue 13): StrykerJS plants small bugs in the modules where a
 * wrong answer corrupts or leaks data, and reports each one no test caught. Not part of test:all
 * (too slow for 2 cores). Scores and the survivors explained: docs/mutation-testing.md.
 *
 *   npm run mutate                      every scope below, one after the other in one run
 *   MUTATE_SCOPE=auth npm run mutate    one scope (auth, digest, content, index, lifecycle, fill, guard, transfer,
 *                                       archive-import, archive-export); a comma list works
 *
 * Each scope names the code it mutates and the tests that cover it; vitest.stryker.config.ts runs
 * only those tests (passed through WHARF_MUTATE_TESTS), and with perTest coverage Stryker runs, for
 * each mutant, only the tests that reach it. Results are kept in reports/mutation/ (--incremental:
 * a rerun tests only mutants whose code or tests changed).
 */
import process from 'node:process';

const scopes = {
  // Client authentication and authorization (issue 8): who may read and write what.
  auth: {
    mutate: ['src/registry/auth/**/*.ts', '!src/registry/auth/**/*.test.ts'],
    tests: ['src/registry/auth/**/*.test.ts', 'test/client-auth.test.ts', 'test/mirror.test.ts'],
  },
  // Digest computation and every place bytes are checked against one.
  digest: {
    mutate: [
      'src/oci/digest.ts',
      // Line ranges: BlobFiles.write and verify(), BlobFill.verify, Uploads.finish, LocalStore's verified
      // reads (openBlob through judgeFile; getManifest and readManifestFile) and putManifest's digest check. Keep them on those functions
      // when the files change (`grep -n` the names).
      'src/store/blob-files.ts:214-248',
      'src/store/blob-files.ts:432-452',
      'src/store/blob-fill.ts:74-87',
      'src/store/uploads.ts:81-110',
      'src/store/local-store.ts:201-302',
      'src/store/local-store.ts:311-340',
      'src/store/local-store.ts:438-444',
      // Serve's checks of stored blobs (ADR 0009): read whole, read in order, or waiting for another read's hash.
      'src/store/verified-read.ts',
      // Which files a reader may trust without hashing them again.
      'src/store/verified-files.ts',
      'src/upstream/manifest-response.ts',
    ],
    tests: [
      'src/oci/digest.test.ts',
      'src/upstream/manifest-response.test.ts',
      'test/verified-read.test.ts',
      'test/verified-files.test.ts',
      'test/store-verification.test.ts',
      'test/registry-errors.test.ts',
      'test/store.test.ts',
      'test/verify.test.ts',
      'test/registry-api.test.ts',
      'test/fill-registry.test.ts',
      'test/mirror-blob-verify.test.ts',
      'test/mirror-faults.test.ts',
      'test/upstream-registry.test.ts',
      'test/upstream-hostile.test.ts',
      'test/manifest-bytes.test.ts',
    ],
  },
  // The content-addressed store, in three parts (all of src/store/ at once is hours on 2 cores);
  // `MUTATE_SCOPE=content,index,lifecycle` is the whole store.
  // Blob bytes: files, fills, uploads, imports, verified reads.
  content: {
    mutate: [
      'src/store/blob-files.ts',
      'src/store/blob-fill.ts',
      'src/store/blob-holders.ts',
      'src/store/uploads.ts',
      'src/store/upload-quota.ts',
      'src/store/import-batch.ts',
      'src/store/verified-files.ts',
      'src/store/verified-read.ts',
    ],
    tests: [
      'test/store.test.ts',
      'test/store-durability.test.ts',
      'test/store-verification.test.ts',
      'test/verified-files.test.ts',
      'test/verified-read.test.ts',
      'test/registry-api.test.ts',
      'test/upload-limits.test.ts',
      'test/fill-registry.test.ts',
      'test/fill-registry-edges.test.ts',
      'test/mirror-blob-verify.test.ts',
      'test/image-writer-contract.test.ts',
      'test/content-guard-leases.test.ts',
      'test/blob-files-edges.test.ts',
      'test/blob-fill-readers.test.ts',
      'test/upload-sessions.test.ts',
      'test/import-batch-links.test.ts',
      'test/import-batch.test.ts',
      // Round 8d: an upload session after a refused chunk or a wrong digest (Uploads.append, finish).
      'test/registry-api-edges.test.ts',
      // Round 9d: a closing PUT with its last chunk (chunked, or with a Content-Range), a cancelled session.
      'test/registry-http-edges.test.ts',
      // Round 10b: an upload session of a blob the store already holds reserves no bytes.
      'test/upload-session-space.test.ts',
      // Round 10a: one manifest under two names in one import batch.
      'test/import-batch-names.test.ts',
      // Round 12b: a blob held to its declared size both ways (a longer body cut, a shorter one refused).
      'test/blob-declared-size.test.ts',
    ],
  },
  // The SQLite index: names, tags, manifests, links, and the checks that read it.
  index: {
    mutate: [
      'src/store/local-store.ts',
      'src/store/store-index.ts',
      'src/store/database.ts',
      'src/store/lookup-cache.ts',
      'src/store/manifest-cache.ts',
      'src/store/image-listing.ts',
      'src/store/store-health.ts',
      'src/store/verify-index.ts',
      'src/store/verify.ts',
    ],
    tests: [
      'test/store.test.ts',
      'test/store-verification.test.ts',
      'test/verify.test.ts',
      'test/registry-api.test.ts',
      'test/registry-errors.test.ts',
      'test/manifest-bytes.test.ts',
      'test/mirror-tags.test.ts',
      // local-store.ts also holds the verified reads and the write paths these reach in process.
      'test/verified-read.test.ts',
      'test/content-guard-leases.test.ts',
      'test/upload-sessions.test.ts',
      'test/blob-files-edges.test.ts',
      'test/store-durability.test.ts',
      'test/image-writer-contract.test.ts',
      // The manifest-bytes and lookup caches: their bounds, the lookup window, staleness through LocalStore.
      'src/store/manifest-cache.test.ts',
      'src/store/lookup-cache.test.ts',
      'test/store-caches.test.ts',
      // verify and verify-index in process: each problem made for real, its exact report.
      'test/verify-report.test.ts',
      // local-store.ts and store-index.ts: the write paths, the options open applies, the small calls.
      'test/store-writes.test.ts',
      'test/local-store-surface.test.ts',
      // database.ts's migrations and read-only open, `wharf ls`'s listing, /readyz's checks: in process.
      'test/database.test.ts',
      'test/store-health.test.ts',
      'test/image-listing.test.ts',
      // Round 8a of the planted bugs: every read (a manifest HEAD too) records its time.
      'test/store-read-touches.test.ts',
    ],
  },
  // Disk over time: size limit, eviction, gc, pins, quarantine, repair, scrub, stats.
  lifecycle: {
    mutate: [
      'src/store/lifecycle.ts',
      'src/store/eviction.ts',
      'src/store/gc-plan.ts',
      'src/store/content-guard.ts',
      'src/store/pinned-content.ts',
      'src/store/space-limit.ts',
      'src/store/quarantine.ts',
      'src/store/repair.ts',
      'src/store/blob-scrub.ts',
      'src/store/store-stats.ts',
    ],
    tests: [
      'test/eviction.test.ts',
      'test/eviction-whole.test.ts',
      'test/content-guard-leases.test.ts',
      'test/gc.test.ts',
      'test/scrub.test.ts',
      'test/verified-files.test.ts',
      'test/quarantine-accounting.test.ts',
      'test/pinned-bytes.test.ts',
      'test/stats.test.ts',
      'test/store-durability.test.ts',
      // Quarantine's move and holders; store.maxSize counting pushed blobs.
      'test/blob-files-edges.test.ts',
      'test/upload-sessions.test.ts',
      // Round 6 of the planted bugs: gc's cutoff and untagged indexes, the stats figures.
      'test/gc-edges.test.ts',
      'test/store-stats.test.ts',
      // lifecycle.ts, space-limit.ts, quarantine.ts, gc-plan.ts in process: what each deletion takes and keeps.
      'test/quarantine-rows.test.ts',
      'test/gc-sweep.test.ts',
      'test/space-limit.test.ts',
      // pinned-content.ts, eviction.ts, content-guard.ts in process: the graph, the pinned and kept sets, du's
      // classification against an eviction; what one eviction takes, in order; the guard's window, leases, removals.
      'test/pinned-content-graph.test.ts',
      'test/eviction-units.test.ts',
      'test/content-guard-window.test.ts',
      // stats, repair and scrub in process: exact figures, exact repair lines, each scrub edge done for real.
      'test/store-stats-figures.test.ts',
      'test/repair-outcome.test.ts',
      'test/scrub-edges.test.ts',
      // Round 8a of the planted bugs: a shared link kept by eviction, reads flushed before it orders, pinned links.
      'test/eviction-kept-links.test.ts',
      'test/store-read-touches.test.ts',
      'test/gc-pinned-links.test.ts',
    ],
  },
  // Single-flight fills: one upstream download per digest, verdict shared, last chunk held back.
  fill: {
    // fill-queue.ts: the bound on concurrent fills and the hand-over of a freed slot (round 8a).
    mutate: ['src/proxy/fill-registry.ts', 'src/proxy/fill-queue.ts'],
    tests: [
      'src/proxy/fill-queue.test.ts',
      'test/fill-registry.test.ts',
      'test/fill-registry-edges.test.ts',
      'test/mirror.test.ts',
      'test/mirror-prefetch.test.ts',
      'test/mirror-faults.test.ts',
      'test/mirror-blob-verify.test.ts',
      'test/mirror-fill-limits.test.ts',
      'test/client-disconnect.test.ts',
      // Round 7a of the hand-planted bugs: a failed fill forgotten (checked before any settle()).
      'test/fill-forget.test.ts',
    ],
  },
  // The transfer engine of copy, export, import and preload (rounds 8b and 8c of the hand-planted bugs found
  // it the weakest area): planning an image's tree, copying blobs verified while streaming, the writer
  // to a registry. Most command tests spawn wharf and cannot see a mutant; these run the engine in process.
  transfer: {
    mutate: [
      'src/transfer/copy-images.ts',
      'src/transfer/image-plan.ts',
      'src/transfer/limit.ts',
      'src/oci/verified-stream.ts',
      'src/upstream/registry-image-reader.ts',
      'src/upstream/registry-image-writer.ts',
    ],
    tests: [
      'src/transfer/limit.test.ts',
      'src/oci/verified-stream.test.ts',
      'test/image-plan.test.ts',
      'test/image-reader-contract.test.ts',
      'test/image-writer-contract.test.ts',
      'test/transfer-engine-failures.test.ts',
      'test/registry-writer-failed-copy.test.ts',
      'test/registry-writer-referrers-tag.test.ts',
      'test/manifest-bytes-transfer.test.ts',
      'test/layout-durability.test.ts',
      'test/layout-merge.test.ts',
      'test/export-tar-headers.test.ts',
      'test/output-durability.test.ts',
      'test/import-counts.test.ts',
      'test/import-pick.test.ts',
      // Round 9b of the hand-planted bugs.
      'test/transfer-engine-edges.test.ts',
      'test/registry-writer-edges.test.ts',
      // The transfer scope's survivors in image-plan and the registry writer (30 November).
      'test/registry-writer-mutants.test.ts',
      'test/image-plan-mutants.test.ts',
      // The transfer scope's first survivors: copy-images, verified-stream, limit (30 November).
      'test/transfer-engine-mutants.test.ts',
      // Round 11d of the hand-planted bugs: the referrers tag index with two referrers.
      'test/referrers-tag-update.test.ts',
      // Round 13d of the hand-planted bugs: the engine's order of writes (children, index, tag, commit).
      'test/transfer-write-order.test.ts',
    ],
  },
  // The archives, in two parts. Reading them: an OCI layout (tar or folder) or a docker save tar into a writer.
  'archive-import': {
    mutate: [
      'src/archive/tar-entries.ts',
      'src/archive/dir-entries.ts',
      'src/archive/entry-stages.ts',
      'src/archive/import-archive.ts',
      'src/archive/import-layout.ts',
      'src/archive/import-docker-archive.ts',
      'src/archive/write-image-tree.ts',
      'src/archive/layout-path.ts',
      'src/archive/layout-index.ts',
      'src/archive/ref-names.ts',
      'src/archive/docker-manifest.ts',
      'src/archive/docker-names.ts',
      'src/archive/commit-or-abort.ts',
    ],
    tests: [
      'src/archive/layout-path.test.ts',
      'src/archive/layout-index.test.ts',
      'src/archive/ref-names.test.ts',
      'src/archive/docker-names.test.ts',
      'test/import-edges.test.ts',
      'test/import-commit-fails.test.ts',
      'test/import-counts.test.ts',
      'test/import-dir-symlink.test.ts',
      'test/import-index-children.test.ts',
      'test/import-pick.test.ts',
      'test/import-batch-links.test.ts',
      'test/manifest-bytes-transfer.test.ts',
      'test/image-reader-contract.test.ts',
      'test/image-writer-contract.test.ts',
      'test/export-tar-headers.test.ts',
      // The entry readers on real tars and folders, the manifest-copy stage.
      'src/archive/tar-entries.test.ts',
      'src/archive/dir-entries.test.ts',
      'src/archive/entry-stages.test.ts',
      // The docker save reader's survivors (import-docker-archive, docker-manifest, docker-names), in process.
      'test/docker-archive-import-mutants.test.ts',
      // The layout reader's survivors (import-archive, import-layout, write-image-tree): events, refusals, referrers.
      'test/layout-import-mutants.test.ts',
    ],
  },
  // Writing them: a layout tar or folder (added to one already there), docker's manifest.json, the durable output.
  'archive-export': {
    mutate: [
      'src/archive/oci-layout-writer.ts',
      'src/archive/oci-layout-dir-writer.ts',
      'src/archive/existing-layout.ts',
      'src/archive/docker-load-manifest.ts',
      'src/archive/durable-output.ts',
      'src/archive/layout-names.ts',
    ],
    tests: [
      'src/archive/docker-load-manifest.test.ts',
      'test/export-tar-headers.test.ts',
      'test/output-durability.test.ts',
      'test/layout-durability.test.ts',
      'test/layout-merge.test.ts',
      'test/layout-dir-abort.test.ts',
      'test/layout-tar-abort.test.ts',
      'test/layout-writer-edges.test.ts',
      'test/image-writer-contract.test.ts',
      'test/manifest-bytes-transfer.test.ts',
      // existing-layout and docker-load-manifest (30 November): readExistingLayout called directly.
      'test/existing-layout.test.ts',
      // archive-export's first pass: the layout writers' aborts and failures, the durable output's TempOutput.
      'test/export-writer-edges.test.ts',
      // archive-export's second pass: each writer's dedup (a blob or folder entry once, one temp per digest), a tar's end undrained.
      'test/export-writer-dedup.test.ts',
    ],
  },
  // Which addresses wharf may dial.
  guard: {
    mutate: ['src/upstream/address-guard.ts', 'src/upstream/address-class.ts'],
    tests: [
      'src/upstream/address-guard.test.ts',
      'src/upstream/address-class.test.ts',
      'test/upstream-hostile.test.ts',
    ],
  },
};

const names = (process.env.MUTATE_SCOPE ?? Object.keys(scopes).join(',')).split(',').filter(Boolean);
for (const name of names) {
  if (!(name in scopes)) throw new Error(`MUTATE_SCOPE: unknown scope ${name} (${Object.keys(scopes).join(', ')})`);
}
const chosen = names.map((name) => scopes[name]);
// Read by vitest.stryker.config.ts in Stryker's test-runner processes (they inherit the environment).
process.env.WHARF_MUTATE_TESTS = JSON.stringify([...new Set(chosen.flatMap((scope) => scope.tests))]);
const scopeName = names.join('+');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  // related: false, the file list is ours: vitest's import graph misses tests that reach code over HTTP.
  vitest: { configFile: 'vitest.stryker.config.ts', related: false },
  coverageAnalysis: 'perTest',
  mutate: [...new Set(chosen.flatMap((scope) => scope.mutate))],
  // Two cores: two test-runner processes.
  concurrency: 2,
  // Integration tests start servers; a mutant that makes one hang is a timeout (counted as killed).
  timeoutMS: 30_000,
  timeoutFactor: 2,
  // MUTATE_IGNORE_STATIC=1: mutants reached only while modules load or in beforeAll hooks (each of them runs
  // every test of the scope) are reported Ignored, not run: a quick first look at a large scope. Scores in
  // docs/ say when they were measured this way.
  ignoreStatic: process.env.MUTATE_IGNORE_STATIC === '1',
  incremental: true,
  incrementalFile: `reports/mutation/${scopeName}.incremental.json`,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${scopeName}.html` },
  jsonReporter: { fileName: `reports/mutation/${scopeName}.json` },
  clearTextReporter: { allowColor: false, logTests: false },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  // Leave heavy or unrelated trees out of the sandbox copy.
  ignorePatterns: ['dist', 'reports', 'bench', '.ci', 'docs', '.stryker-tmp'],
};
