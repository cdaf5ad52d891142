/**
 * Durability of the files the commands write for their user (archive/durable-output.ts; issue 13's
 * fsync promise beyond the store): the tar of `wharf export -o bundle.tar`, the tar of `wharf copy …
 * oci-archive:<file>`, and the file of `wharf blob get -o <file>` are each fsynced under their temp
 * name, renamed into place, and their directory fsynced, in that order, before the command returns.
 * A kill -9 test cannot show this (the page cache survives it), so the commands' fs calls are
 * watched through their one seam for them (the flags' `outputFs`, set by no option). Real parts: a
 * LocalStore, CNCF distribution as the registry, the commands' own functions in process.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitTempFile } from '../src/archive/durable-output.js';
import { runBlobGet } from '../src/cli/client/blob-commands.js';
import { runCopy } from '../src/cli/client/copy-command.js';
import { runExport } from '../src/cli/export-command.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { storeHolding } from './support/layout-store.js';
import { loggingFs } from './support/logging-output-fs.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { withDeadline } from './support/run.js';

const deadlineMs = 60_000;
const partOf = (file: string): RegExp => new RegExp(`^${file.replace('.', '\\.')}\\.\\d+\\.part$`);

/**
 * The steps of one durable output, `file` in the folder the steps are relative to: its stream closed
 * (every byte written), synced, renamed, the folder synced.
 */
function committed(file: string): unknown[] {
  return [
    expect.stringMatching(new RegExp(`^close ${partOf(file).source.slice(1, -1)}$`)) as unknown,
    expect.stringMatching(new RegExp(`^sync ${partOf(file).source.slice(1, -1)}$`)) as unknown,
    expect.stringMatching(
      new RegExp(`^rename ${partOf(file).source.slice(1, -1)} -> ${file.replace('.', '\\.')}$`),
    ) as unknown,
    'sync .',
  ];
}

let work: string;
let image: TestImage;
let distribution: DistributionHandle;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-output-durability-'));
  image = await makeImage({ seed: testSeed('output-durability'), layers: 1 });
  distribution = await startDistribution();
  await pushTestImage(distribution.url, 'team/app', 'v1', image);
  const store = await storeHolding(work, 'registry.example.test/team/app', { v1: image });
  store.close();
}, deadlineMs);

afterAll(async () => {
  await distribution?.close();
  await rm(work, { recursive: true, force: true });
});

describe('commitTempFile', () => {
  it('syncs the file, renames it into place, then syncs its directory', async () => {
    const dir = join(work, 'commit');
    await mkdir(dir);
    await writeFile(join(dir, 'out.bin.1.part'), 'whole');
    const steps: string[] = [];
    await commitTempFile(join(dir, 'out.bin.1.part'), join(dir, 'out.bin'), loggingFs(dir, steps));
    expect(steps).toEqual(['sync out.bin.1.part', 'rename out.bin.1.part -> out.bin', 'sync .']);
    expect(await readFile(join(dir, 'out.bin'), 'utf8')).toBe('whole');
    expect(await readdir(dir)).toEqual(['out.bin']);
  });
});

describe('the commands that write a file', () => {
  it('wharf export -o bundle.tar: the tar synced, renamed, its folder synced', async () => {
    const dir = await mkdtemp(join(work, 'export-'));
    const steps: string[] = [];
    await withDeadline(
      runExport(
        ['registry.example.test/team/app:v1'],
        { data: join(work, 'store'), output: join(dir, 'bundle.tar'), quiet: true, outputFs: loggingFs(dir, steps) },
        {},
      ),
      deadlineMs,
      'wharf export',
    );
    expect(steps).toEqual(committed('bundle.tar'));
    expect(await readdir(dir)).toEqual(['bundle.tar']);
  });

  it('wharf copy … oci-archive:<file>: the tar synced, renamed, its folder synced', async () => {
    const dir = await mkdtemp(join(work, 'copy-'));
    const steps: string[] = [];
    const env = { DOCKER_CONFIG: join(work, 'no-docker-config'), WHARF_LOG_LEVEL: 'silent' };
    await withDeadline(
      runCopy(
        `${distribution.host}/team/app:v1`,
        `oci-archive:${join(dir, 'app.tar')}`,
        { quiet: true, plainHttp: true, outputFs: loggingFs(dir, steps) },
        env,
      ),
      deadlineMs,
      'wharf copy',
    );
    expect(steps).toEqual(committed('app.tar'));
    expect(await readdir(dir)).toEqual(['app.tar']);
  });

  it('wharf blob get -o <file>: the blob synced, renamed, its folder synced', async () => {
    const dir = await mkdtemp(join(work, 'blob-'));
    const steps: string[] = [];
    const [digest, bytes] = [...image.blobs][0] ?? [];
    if (digest === undefined || bytes === undefined) throw new Error('the image has no blob');
    const env = { DOCKER_CONFIG: join(work, 'no-docker-config'), WHARF_LOG_LEVEL: 'silent' };
    await withDeadline(
      runBlobGet(
        `${distribution.host}/team/app`,
        digest,
        { plainHttp: true, output: join(dir, 'layer.bin'), outputFs: loggingFs(dir, steps) },
        env,
      ),
      deadlineMs,
      'wharf blob get',
    );
    expect(steps).toEqual(committed('layer.bin'));
    expect(await readFile(join(dir, 'layer.bin'))).toEqual(bytes);
  });
});
