/**
 * What readExistingLayout finds in the folder an export writes its OCI layout into (the archive-export
 * Stryker scope, 30 November): a missing folder is created with its parents; an empty one is used as
 * it is; a layout has its index.json entries, other index fields and docker's manifest.json read so
 * the export merges into them (an index.json without `manifests`, or no index.json or manifest.json
 * at all, is an empty layout, not a refusal). Refused, each with its code and the message the CLI
 * prints: a path that is a file, an oci-layout of no version or a non-string one, files that are not
 * small regular files, JSON that does not parse or is not an object, manifests that are not a list of
 * descriptors. A failure of the folder's own stat (other than "not there") is passed on, not taken for
 * "create it". Real folders in a temp dir, the function called directly.
 */
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readExistingLayout } from '../src/archive/existing-layout.js';
import { refusal } from './support/writer-output.js';

let work: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-existing-layout-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const v1 = JSON.stringify({ imageLayoutVersion: '1.0.0' });

/** A folder `name` under the test's temp dir holding `files` (name → content). */
async function folder(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(dir, file), content);
  return dir;
}

describe('a folder that is not a layout yet', () => {
  it('creates a missing folder, its missing parents too', async () => {
    const dir = join(work, 'exports', 'nightly', 'layout');
    expect(await readExistingLayout(dir)).toEqual({
      createdDir: true,
      hasLayoutFile: false,
      index: {},
      manifests: [],
      dockerManifest: [],
    });
    expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it('uses an empty folder as it is, and says it did not create it', async () => {
    const dir = await folder('empty', {});
    expect(await readExistingLayout(dir)).toEqual({
      createdDir: false,
      hasLayoutFile: false,
      index: {},
      manifests: [],
      dockerManifest: [],
    });
  });

  it('refuses a folder with other files and no oci-layout, saying why', async () => {
    const dir = await folder('notes', { 'notes.txt': 'mine' });
    const error = await refusal(readExistingLayout(dir));
    expect(error.code).toBe('NAME_INVALID');
    expect(error.message).toBe(`${dir} is not empty and holds no oci-layout: not an OCI image layout`);
  });

  it('refuses a path that is a file', async () => {
    const path = join(work, 'bundle.tar');
    await writeFile(path, 'a tar, not a folder');
    const error = await refusal(readExistingLayout(path));
    expect(error.code).toBe('NAME_INVALID');
    expect(error.message).toBe(`${path} exists and is not a directory`);
  });

  it('passes on a stat failure other than ENOENT instead of creating the folder', async () => {
    const loop = join(work, 'loop');
    await symlink(loop, loop);
    const error = await readExistingLayout(loop).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'ELOOP', syscall: 'stat' });
  });
});

describe('a folder holding a layout', () => {
  const descriptor = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${'a'.repeat(64)}`,
    size: 400,
    annotations: { 'org.opencontainers.image.ref.name': 'team/app:v1' },
  };

  it('reads index.json (entries, other fields) and manifest.json', async () => {
    const dir = await folder('full', {
      'oci-layout': v1,
      'index.json': JSON.stringify({ schemaVersion: 2, annotations: { by: 'another tool' }, manifests: [descriptor] }),
      'manifest.json': JSON.stringify([
        { Config: 'blobs/sha256/c', RepoTags: ['team/app:v1'], Layers: ['blobs/sha256/l'] },
      ]),
    });
    expect(await readExistingLayout(dir)).toEqual({
      createdDir: false,
      hasLayoutFile: true,
      index: { schemaVersion: 2, annotations: { by: 'another tool' } },
      manifests: [descriptor],
      dockerManifest: [{ Config: 'blobs/sha256/c', RepoTags: ['team/app:v1'], Layers: ['blobs/sha256/l'] }],
    });
  });

  it('takes a layout with no index.json, or one without manifests, and no manifest.json, as empty', async () => {
    const empty = { createdDir: false, hasLayoutFile: true, manifests: [], dockerManifest: [] };
    const bare = await folder('bare', { 'oci-layout': v1 });
    expect(await readExistingLayout(bare)).toEqual({ ...empty, index: {} });
    const unlisted = await folder('unlisted', { 'oci-layout': v1, 'index.json': '{"schemaVersion":2}' });
    expect(await readExistingLayout(unlisted)).toEqual({ ...empty, index: { schemaVersion: 2 } });
  });

  it('refuses an imageLayoutVersion that is not a string', async () => {
    const dir = await folder('numbered', { 'oci-layout': JSON.stringify({ imageLayoutVersion: 1 }) });
    const error = await refusal(readExistingLayout(dir));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.message).toBe(`${dir}/oci-layout: unsupported imageLayoutVersion 1`);
  });

  it('refuses manifests that are not a list, or a list holding something else than descriptors', async () => {
    for (const [name, manifests] of [
      ['text', 'none'],
      ['mixed', [descriptor, 5]],
    ] as const) {
      const dir = await folder(name, { 'oci-layout': v1, 'index.json': JSON.stringify({ manifests }) });
      const error = await refusal(readExistingLayout(dir));
      expect(error.code).toBe('MANIFEST_INVALID');
      expect(error.message).toBe(`${dir}/index.json: manifests is not a list of descriptors`);
    }
  });

  it('refuses JSON that does not parse, keeping the parser error as the cause', async () => {
    const dir = await folder('torn', { 'oci-layout': '{"imageLayoutVersion": "1.0' });
    const error = await refusal(readExistingLayout(dir));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toBe('oci-layout is not valid JSON');
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('refuses an index.json that is JSON but not an object', async () => {
    const dir = await folder('listed', { 'oci-layout': v1, 'index.json': JSON.stringify([descriptor]) });
    const error = await refusal(readExistingLayout(dir));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toBe('index.json is not a JSON object');
  });

  it('refuses an oci-layout that is a folder, not a regular file', async () => {
    const dir = await folder('odd', {});
    await mkdir(join(dir, 'oci-layout'));
    const error = await refusal(readExistingLayout(dir));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toBe(`${join(dir, 'oci-layout')} is not a small regular file`);
  });

  it('reads an oci-layout of exactly 64 KiB, refuses one byte more', async () => {
    const padded = (size: number): string => v1.padEnd(size, ' ');
    const fits = await folder('fits', { 'oci-layout': padded(64 * 1024) });
    expect((await readExistingLayout(fits)).hasLayoutFile).toBe(true);
    const over = await folder('over', { 'oci-layout': padded(64 * 1024 + 1) });
    const error = await refusal(readExistingLayout(over));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toBe(`${join(over, 'oci-layout')} is not a small regular file`);
  });
});
