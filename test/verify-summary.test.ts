/**
 * `wharf verify`'s summary lines (cli/verify-command.ts formatVerifyReport, round 11c): each
 * category's line counts its own problems, so a line never says "ok" beside an `error:` line about
 * it, and the result line counts them all.
 */
import { describe, expect, it } from 'vitest';
import { formatVerifyReport } from '../src/cli/verify-command.js';
import type { Digest } from '../src/oci/digest.js';
import type { VerifyProblem, VerifyReport } from '../src/store/verify.js';

function report(problems: VerifyProblem[], quick = false): VerifyReport {
  return {
    quick,
    blobs: { rows: 2, bytes: 2048, hashedBytes: 2048 },
    index: { repositories: 1, manifests: 1, tags: 1, links: 1 },
    uploads: { sessions: 2, filesWithoutSession: 0 },
    unindexed: [],
    temp: [],
    problems,
  };
}

describe('formatVerifyReport', () => {
  it('counts a missing and a short upload file on the uploads line', () => {
    const output = formatVerifyReport(
      report([
        { kind: 'upload-file-missing', message: 'upload a: its file is missing' },
        { kind: 'upload-file-short', message: 'upload b: its file is shorter than the session says' },
      ]),
      '/srv/wharf',
      1000,
    );
    expect(output.stdout).toContain('uploads: 2 sessions, 0 files without a session: 2 problems');
    expect(output.stdout.at(-1)).toBe('result: 2 problems');
    expect(output.stderr).toEqual([
      'error: upload a: its file is missing',
      'error: upload b: its file is shorter than the session says',
    ]);
  });

  it('counts every kind of blob problem on the blobs line, and says what was checked', () => {
    const digest = `sha256:${'cd'.repeat(32)}` as Digest;
    const kinds = ['missing-file', 'size-mismatch', 'digest-mismatch', 'unreadable', 'bad-row'] as const;
    const output = formatVerifyReport(
      report(kinds.map((kind) => ({ kind, message: `${kind} ${digest}`, digest }))),
      '/srv/wharf',
      1000,
    );
    expect(output.stdout).toContain('blobs: 2 rows, 2.0 KiB, sizes and digests checked: 5 problems');
    expect(output.stdout).toContain('references: 1 manifest, 1 tag, 1 link: ok');
    const quick = formatVerifyReport(report([], true), '/srv/wharf', 1500);
    expect(quick.stdout).toContain('blobs: 2 rows, 2.0 KiB, sizes checked (quick: no hashing): ok');
    expect(quick.stdout.at(-1)).toBe('result: consistent (2.0 KiB hashed in 1.5 s)');
  });
});
