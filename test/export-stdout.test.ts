/**
 * `wharf export -o -` (round 9c of planted bugs): stdout carries the tar and nothing else (the
 * summary and, with --json, the progress events go to stderr), so `wharf export … -o - | ssh …`
 * gives a whole archive; and `-o <dir>` naming a folder that exists gets the layout as files,
 * trailing slash or not. Real parts: a store on disk, the CLI spawned, stdout a file.
 */
import { mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeHolding } from './support/layout-store.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { runWharf } from './support/spawn-wharf.js';

const ref = 'registry.example.test/team/app:v1';
let work: string;
let image: TestImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-export-stdout-'));
  image = await makeImage({ seed: testSeed('export-stdout'), layers: 2 });
  const store = await storeHolding(work, 'registry.example.test/team/app', { v1: image });
  store.close();
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs wharf with its stdout going straight into a file (as a shell's `>` does). */
async function runToFile(args: string[], file: string): Promise<{ code: number | null; stderr: string }> {
  const handle = await open(file, 'w');
  try {
    return await runWharf(args, { stdoutFd: handle.fd, timeoutMs: 60_000 });
  } finally {
    await handle.close();
  }
}

async function entryNames(tar: Buffer): Promise<string[]> {
  const names: string[] = [];
  const parser = extract();
  Readable.from([tar]).pipe(parser);
  for await (const entry of parser) {
    if (entry.header.type === 'file') names.push(entry.header.name);
    entry.resume();
  }
  return names.sort();
}

/** stdout holds a tar and nothing after it: its end-of-archive blocks are its last bytes. */
async function expectWholeTarOnly(tar: Buffer): Promise<void> {
  expect(tar.length % 512).toBe(0);
  expect(tar.subarray(tar.length - 1024).every((b) => b === 0)).toBe(true);
  const names = await entryNames(tar);
  expect(names).toContain('index.json');
  expect(names).toContain(`blobs/sha256/${image.root.digest.slice('sha256:'.length)}`);
}

describe('wharf export -o -', () => {
  it('writes the tar alone to stdout, the summary to stderr', async () => {
    const file = join(work, 'stdout.tar');
    const result = await runToFile(['export', ref, '-o', '-', '--data', join(work, 'store')], file);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('exported 1 image (');
    expect(result.stderr).toContain('to stdout');
    await expectWholeTarOnly(await readFile(file));
  });

  it('with --json, sends the progress events to stderr, never into the tar', async () => {
    const file = join(work, 'stdout-json.tar');
    const result = await runToFile(['export', ref, '-o', '-', '--json', '--data', join(work, 'store')], file);
    expect(result.code).toBe(0);
    const events = result.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string });
    expect(events.length).toBeGreaterThan(0);
    await expectWholeTarOnly(await readFile(file));
  });
});

describe('wharf export -o <a folder that exists>', () => {
  it('writes the layout as files into it, without a trailing slash too', async () => {
    const dir = join(work, 'existing');
    await mkdir(dir);
    const result = await runWharf(['export', ref, '-o', dir, '--data', join(work, 'store')], { timeoutMs: 60_000 });
    expect(result.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'manifest.json', 'oci-layout']);
    expect((await readdir(join(work))).filter((n) => n.endsWith('.part'))).toEqual([]);
  });
});
