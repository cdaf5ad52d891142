/**
 * `wharf gc`'s human report (cli/gc-command.ts formatGcReport, round 11c): one line per thing
 * removed, and a last line whose counts are each of its own kind, with "freed" after a real run and
 * "would free" after a dry run.
 */
import { describe, expect, it } from 'vitest';
import { formatGcReport } from '../src/cli/gc-command.js';
import type { Digest } from '../src/oci/digest.js';

const digest = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;

describe('formatGcReport', () => {
  it('counts each kind on its own, singular or plural', () => {
    const text = formatGcReport({
      dryRun: false,
      manifests: [{ repository: 'team/app', digest: digest('a'), size: 100 }],
      links: [],
      blobs: [
        { digest: digest('b'), size: 1024 },
        { digest: digest('c'), size: 1024 },
      ],
      unindexed: [
        { digest: digest('d'), size: 10 },
        { digest: digest('e'), size: 10 },
        { digest: digest('f'), size: 10 },
      ],
      uploads: [{ id: 'u1', size: 5 }],
      bytes: 2083,
    });
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(8);
    expect(lines[0]).toBe(`manifest  team/app@${digest('a')}  untagged, unreferenced`);
    expect(lines[6]).toBe('upload    u1  5 B  abandoned');
    expect(lines.at(-1)).toBe('freed 2.0 KiB: 1 manifest, 0 links, 2 blobs, 3 unindexed files, 1 upload');
  });
});
