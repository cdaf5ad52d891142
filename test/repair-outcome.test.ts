/**
 * `wharf verify --repair` in process (issue 13, lifecycle scope): verifyStore finds the damage done
 * for real to a store on disk, repairStore acts on it, and describeQuarantine gives the lines the
 * command prints. Each test asserts what was quarantined (digest, reason, found by repair, where the
 * file went), the exact lines, and which findings are left for the operator. repair.test.ts runs the
 * command as a child process, which the mutation runner cannot see.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { requireRepoName, type RepoName, type Tag } from '../src/oci/reference.js';
import { describeQuarantine, mirroredNameTest } from '../src/cli/quarantine-report.js';
import { LocalStore } from '../src/store/local-store.js';
import { repairStore, type RepairOutcome } from '../src/store/repair.js';
import { verifyStore, type VerifyProblem } from '../src/store/verify.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { content, descriptorOf, imageManifest, ociTypes, type Content } from './support/store-content.js';

const mirrored = requireRepoName('mirror.test/lib/app');
const pushed = requireRepoName('team/app');
const isMirrored = mirroredNameTest(['mirror.test']);

let root: string;

async function* chunks(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function put(store: LocalStore, name: RepoName, blob: Content): Promise<void> {
  await store.putBlob(name, blob.digest, chunks(blob.bytes), blob.size);
}

/** Repairs with a store opened as the command opens it, and closes it. */
async function repair(problems: readonly VerifyProblem[]): Promise<RepairOutcome> {
  const store = await LocalStore.open(root);
  try {
    return await repairStore(store, problems);
  } finally {
    store.close();
  }
}

/** The command's lines for what was quarantined, the quarantine path's timestamp as <ms>. */
function linesOf(outcome: RepairOutcome): string[] {
  return outcome.quarantined.map((result) => {
    const line = describeQuarantine(result, root, isMirrored);
    return `${line.kind}: ${line.text.replace(/-\d+\b/, '-<ms>')}`;
  });
}

/** What each quarantine result says, but its holders (the lines say those). */
function summaries(outcome: RepairOutcome): [Digest, string, string, string | undefined][] {
  return outcome.quarantined.map((r) => [r.digest, r.reason, r.foundBy, r.movedTo?.replace(/-\d+$/, '-<ms>')]);
}

function quarantinePath(digest: Digest): string {
  return join(root, 'quarantine', `sha256-${digest.slice(7)}-<ms>`);
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-repair-outcome-'));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

describe('repairStore on what verifyStore finds', () => {
  const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux', mirrored: true }));
  const flipped = content(Buffer.alloc(2000, 1));
  const cut = content(Buffer.alloc(3000, 2));
  const fetched = imageManifest(config, [descriptorOf(flipped, ociTypes.layer), descriptorOf(cut, ociTypes.layer)]);
  const pushedConfig = content(JSON.stringify({ architecture: 'arm64', os: 'linux' }));
  const removed = content(Buffer.alloc(4000, 3));
  const pushedManifest = imageManifest(pushedConfig, [descriptorOf(removed, ociTypes.layer)]);
  const stray = content('bytes that are not these');
  const misnamed = content('bytes written under another name');
  const dir = content('a directory stands where this blob goes');

  beforeEach(async () => {
    const store = await LocalStore.open(root);
    try {
      for (const blob of [config, flipped, cut]) await put(store, mirrored, blob);
      await store.putFetchedManifest(
        mirrored,
        { digest: fetched.digest, mediaType: ociTypes.manifest, bytes: fetched.bytes },
        'v1' as Tag,
      );
      for (const blob of [pushedConfig, removed, dir]) await put(store, pushed, blob);
      await store.putManifest(pushed, 'v1' as Tag, pushedManifest.bytes, ociTypes.manifest);
    } finally {
      store.close();
    }
    await flipByte(blobPath(root, flipped.digest), 100);
    await truncate(blobPath(root, cut.digest), 2999);
    await rm(blobPath(root, removed.digest));
    // A file without a row, whose bytes are not the digest it is named by.
    await mkdir(join(blobPath(root, stray.digest), '..'), { recursive: true });
    await writeFile(blobPath(root, stray.digest), misnamed.bytes);
    // Not a regular file: verify reports it, repair leaves it to the operator.
    await rm(blobPath(root, dir.digest));
    await mkdir(blobPath(root, dir.digest));
  });

  it('quarantines mismatched files, drops rows without a file, and leaves the rest as problems', async () => {
    const report = await verifyStore(root);
    const unexpected: VerifyProblem = {
      kind: 'unexpected-file',
      message: `blob ${dir.digest}: ${blobPath(root, dir.digest)} is not a regular file`,
    };
    expect([...report.problems].sort((a, b) => a.message.localeCompare(b.message))).toEqual(
      [
        {
          kind: 'digest-mismatch',
          message: `blob ${flipped.digest}: file content hashes to ${content(await readFile(blobPath(root, flipped.digest))).digest}`,
          digest: flipped.digest,
        },
        {
          kind: 'size-mismatch',
          message: `blob ${cut.digest}: file is 2999 bytes, the index says 3000`,
          digest: cut.digest,
        },
        {
          kind: 'missing-file',
          message: `blob ${removed.digest}: file ${blobPath(root, removed.digest)} is missing`,
          digest: removed.digest,
        },
        {
          kind: 'digest-mismatch',
          message: `unindexed blobs/sha256/${stray.digest.slice(7, 9)}/${stray.digest.slice(7)}: content hashes to ${misnamed.digest}`,
          digest: stray.digest,
        },
        unexpected,
      ].sort((a, b) => a.message.localeCompare(b.message)),
    );

    const outcome = await repair(report.problems);
    const byDigest = (a: { digest?: string }, b: { digest?: string }): number =>
      (a.digest ?? '').localeCompare(b.digest ?? '');
    outcome.quarantined.sort(byDigest);
    expect(summaries(outcome)).toEqual(
      [
        [flipped.digest, 'digest-mismatch', 'repair', quarantinePath(flipped.digest)],
        [cut.digest, 'size-mismatch', 'repair', quarantinePath(cut.digest)],
        [removed.digest, 'missing-file', 'repair', undefined],
        [stray.digest, 'digest-mismatch', 'repair', quarantinePath(stray.digest)],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    const described = linesOf(outcome);
    const lines = new Map(outcome.quarantined.map((r, i) => [r.digest, described[i]]));
    expect(lines.get(flipped.digest)).toBe(
      `refetchable: blob ${flipped.digest}: its bytes do not match its digest; moved to quarantine/sha256-${flipped.digest.slice(7)}-<ms> (in ${mirrored}); fetched again from the upstream on the next pull`,
    );
    expect(lines.get(cut.digest)).toBe(
      `refetchable: blob ${cut.digest}: its file has the wrong size; moved to quarantine/sha256-${cut.digest.slice(7)}-<ms> (in ${mirrored}); fetched again from the upstream on the next pull`,
    );
    expect(lines.get(removed.digest)).toBe(
      `lost: blob ${removed.digest}: its file is missing; its index rows dropped (in ${pushed}); pushed or imported content no upstream has: push or import it again; pulls of ${pushed}:v1 (pushed) fail until then`,
    );
    expect(lines.get(stray.digest)).toBe(
      `unreferenced: blob ${stray.digest}: its bytes do not match its digest; moved to quarantine/sha256-${stray.digest.slice(7)}-<ms>; no image refers to it`,
    );
    expect(outcome.remaining).toEqual([unexpected]);
    expect((await readdir(join(root, 'quarantine'))).length).toBe(3);

    // What repair acted on is gone from the store; what it left is still found.
    expect((await verifyStore(root)).problems).toEqual([unexpected]);
  });

  it('acts once per blob, and only on the three kinds it repairs when they name a blob', async () => {
    const problems: VerifyProblem[] = [
      { kind: 'digest-mismatch', message: 'first finding', digest: flipped.digest },
      { kind: 'size-mismatch', message: 'the same blob again', digest: flipped.digest },
      // A repairable kind that names no blob: nothing to act on.
      { kind: 'missing-file', message: 'no digest' },
      // A blob named by a finding repair does not act on: left alone, file and rows.
      { kind: 'unreadable', message: 'cannot read', digest: cut.digest },
      { kind: 'broken-reference', message: 'a manifest names a missing blob' },
    ];
    const outcome = await repair(problems);
    expect(summaries(outcome)).toEqual([[flipped.digest, 'digest-mismatch', 'repair', quarantinePath(flipped.digest)]]);
    expect(outcome.remaining).toEqual([problems[2], problems[3], problems[4]]);
    const store = await LocalStore.open(root);
    try {
      expect(store.hasBlob(flipped.digest)).toBe(false);
      expect(store.hasBlob(cut.digest)).toBe(true);
    } finally {
      store.close();
    }
    expect(await readdir(join(root, 'quarantine'))).toEqual([
      expect.stringMatching(new RegExp(`^sha256-${flipped.digest.slice(7)}-\\d+$`)),
    ]);
  });

  it('does nothing, and leaves nothing, when there is nothing to repair', async () => {
    expect(await repair([])).toEqual({ quarantined: [], remaining: [] });
  });
});
