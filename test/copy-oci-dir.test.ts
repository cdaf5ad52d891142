/**
 * An OCI image layout directory as a destination (ADR 0010, "not done" until now): `wharf copy <src>
 * oci:<dir>` and `wharf export -o <dir>/` write the tar form's content as files (oci-layout,
 * blobs/<alg>/<hex>, index.json with ref.name), each through a temp name; a second image is added
 * to the layout (index.json merged, shared blobs not rewritten); skopeo reads the result with the
 * source's digests and `wharf import` takes it back. A copy that fails midway (a layer whose bytes
 * do not match its digest) leaves the layout exactly as it was: no blob under its final name, no
 * temp file, and a directory the copy created is gone. skopeo's `:<ref>` suffix after the path
 * (copy-ends.ts): as a destination the ref.name written as given (an entry of that ref.name
 * replaced), as a source the one image of that ref.name picked from a layout skopeo wrote with
 * two; a ref.name the layout lacks, one outside the grammar, and a suffix on docker-archive: are
 * refused with one line and exit 1.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { refNameAnnotation, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import { composeImage, makeLayer } from './support/shared-layers.js';
import { runWharf } from './support/spawn-wharf.js';

const timeout = 180_000;

let work: string;
let source: DistributionHandle;
let app: TestImage;
let other: TestImage;
let broken: TestImage;

interface LayoutIndexJson {
  manifests: { digest: string; annotations?: Record<string, string> }[];
}

async function wharfOk(args: string[]): Promise<string> {
  const result = await runWharf(args, { timeoutMs: 90_000 });
  if (result.code !== 0) throw new Error(`wharf ${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
  return result.stdout;
}

async function readIndex(dir: string): Promise<LayoutIndexJson> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as LayoutIndexJson;
}

function refNames(index: LayoutIndexJson): string[] {
  return index.manifests.map((m) => m.annotations?.[refNameAnnotation] ?? '');
}

/** Every file of the layout, by path, with its inode and mtime (a rewrite changes them). */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const info = await stat(path);
    files.set(path.slice(dir.length + 1), `${info.ino}:${info.mtimeMs}:${info.size}`);
  }
  return files;
}

/** Every file under blobs/ holds exactly the bytes its name says. */
async function expectBlobsIntact(dir: string): Promise<void> {
  for (const name of await readdir(join(dir, 'blobs', 'sha256'))) {
    const bytes = await readFile(join(dir, 'blobs', 'sha256', name));
    expect(createHash('sha256').update(bytes).digest('hex'), name).toBe(name);
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-oci-dir-'));
  source = await startDistribution();
  const seed = testSeed('copy to oci dir');
  const base = await makeLayer(`${seed}-base`, 300_000);
  app = composeImage(`${seed}-app`, [base, await makeLayer(`${seed}-app`, 200_000)]);
  other = composeImage(`${seed}-other`, [base, await makeLayer(`${seed}-other`, 100_000)]);
  broken = composeImage(`${seed}-broken`, [await makeLayer(`${seed}-broken`, 2_000_000)]);
  await pushTestImage(source.url, 'team/app', 'v1', app);
  await pushTestImage(source.url, 'team/other', 'v2', other);
  await pushTestImage(source.url, 'team/broken', 'v1', broken);
  // Damage the layer as distribution stores it: it serves the file as is, wharf's copy finds the mismatch at the end.
  const layer = broken.images[0]?.layers[0]?.digest.slice('sha256:'.length) ?? '';
  const data = join(source.dataDir, 'docker/registry/v2/blobs/sha256', layer.slice(0, 2), layer, 'data');
  const bytes = await readFile(data);
  bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
  await writeFile(data, bytes);
}, timeout);

afterAll(async () => {
  await source?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('wharf copy … oci:<dir>', () => {
  it(
    'writes a layout skopeo reads with the same digests, adds a second image without rewriting shared blobs, and imports back',
    async () => {
      const dir = join(work, 'layout');
      await wharfOk(['copy', '-q', `${source.host}/team/app:v1`, `oci:${dir}`]);
      expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
      const first = await readIndex(dir);
      expect(first.manifests.map((m) => m.digest)).toEqual([app.root.digest]);
      const [appName] = refNames(first);
      // The full name, registry port included (skopeo reads `oci:<dir>:127.0.0.1:<port>/team/app:v1`).
      expect(appName).toBe(`${source.host}/team/app:v1`);
      for (const digest of [...app.blobs.keys(), app.root.digest]) {
        expect((await stat(join(dir, 'blobs', digest.replace(':', '/')))).isFile()).toBe(true);
      }
      expect((await readdir(dir)).filter((n) => n.endsWith('.part'))).toEqual([]);

      const before = await snapshot(dir);
      const added = JSON.parse(await wharfOk(['copy', '--json', `${source.host}/team/other:v2`, `oci:${dir}`])) as {
        digest: string;
        blobsSent: number;
        blobsPresent: number;
      };
      // The base layer is already there: not sent, not rewritten.
      expect(added).toMatchObject({ digest: other.root.digest, blobsPresent: 1, blobsSent: 2 });
      const after = await snapshot(dir);
      for (const [path, identity] of before) {
        if (path !== 'index.json' && path !== 'manifest.json') expect(after.get(path), path).toBe(identity);
      }
      const second = await readIndex(dir);
      expect(second.manifests.map((m) => m.digest)).toEqual([app.root.digest, other.root.digest]);
      const otherName = refNames(second)[1] ?? '';
      await expectBlobsIntact(dir);

      // skopeo reads each image by its ref.name, with the source's digests.
      for (const [name, image] of [
        [appName ?? '', app],
        [otherName, other],
      ] as const) {
        const raw = await run('skopeo', ['inspect', '--raw', `oci:${dir}:${name}`], { timeoutMs: 60_000 });
        expect(`sha256:${createHash('sha256').update(raw.stdoutBuffer).digest('hex')}`).toBe(image.root.digest);
        const out = join(work, `skopeo-${image.root.digest.slice(7, 19)}`);
        await run('skopeo', ['copy', `oci:${dir}:${name}`, `oci:${out}:x`], { timeoutMs: 60_000 });
        expect((await readIndex(out)).manifests.map((m) => m.digest)).toEqual([image.root.digest]);
      }

      // wharf import reads the folder back.
      const data = join(work, 'imported');
      await wharfOk(['import', dir, '--data', data, '--quiet']);
      const listed = await wharfOk(['ls', '--json', '--data', data]);
      expect(listed).toContain(app.root.digest);
      expect(listed).toContain(other.root.digest);

      // export -o <dir>/ writes the same layout from the store: the same images, the same blobs.
      const exported = join(work, 'exported');
      await wharfOk(['export', '--all', '-o', `${exported}/`, '--data', data, '--quiet']);
      const exportedIndex = await readIndex(exported);
      expect(exportedIndex.manifests.map((m) => m.digest).sort()).toEqual([app.root.digest, other.root.digest].sort());
      expect((await readdir(join(exported, 'blobs', 'sha256'))).sort()).toEqual(
        (await readdir(join(dir, 'blobs', 'sha256'))).sort(),
      );
      await expectBlobsIntact(exported);
    },
    timeout,
  );

  it(
    'leaves the layout as it was when a blob fails its digest midway, and creates no folder',
    async () => {
      const dir = join(work, 'kept');
      await wharfOk(['copy', '-q', `${source.host}/team/app:v1`, `oci:${dir}`]);
      const before = await snapshot(dir);
      const indexBefore = await readFile(join(dir, 'index.json'));

      const failed = await runWharf(['copy', '-q', `${source.host}/team/broken:v1`, `oci:${dir}`], {
        timeoutMs: 90_000,
      });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/^error: DIGEST_INVALID: /m);
      expect(await snapshot(dir)).toEqual(before);
      expect(await readFile(join(dir, 'index.json'))).toEqual(indexBefore);

      const fresh = join(work, 'never');
      const refused = await runWharf(['copy', '-q', `${source.host}/team/broken:v1`, `oci:${fresh}`], {
        timeoutMs: 90_000,
      });
      expect(refused.code).toBe(1);
      await expect(stat(fresh)).rejects.toMatchObject({ code: 'ENOENT' });
    },
    timeout,
  );
});

describe("skopeo's oci:<path>:<ref> suffix", () => {
  it(
    'names the image as given when writing, replacing the entry of that name, and skopeo reads it by it',
    async () => {
      const dir = join(work, 'suffixed');
      await wharfOk(['copy', '-q', `${source.host}/team/app:v1`, `oci:${dir}:stable`]);
      expect(refNames(await readIndex(dir))).toEqual(['stable']);
      await wharfOk(['copy', '-q', `${source.host}/team/other:v2`, `oci:${dir}:stable`]);
      const index = await readIndex(dir);
      expect(index.manifests.map((m) => m.digest)).toEqual([other.root.digest]);
      expect(refNames(index)).toEqual(['stable']);
      const raw = await run('skopeo', ['inspect', '--raw', `oci:${dir}:stable`], { timeoutMs: 60_000 });
      expect(`sha256:${createHash('sha256').update(raw.stdoutBuffer).digest('hex')}`).toBe(other.root.digest);
    },
    timeout,
  );

  it(
    'picks the one image of that ref.name from a layout skopeo wrote with two, and refuses a name it lacks',
    async () => {
      const dir = join(work, 'two-images');
      for (const [repository, tag, refName] of [
        ['team/app', 'v1', 'one'],
        ['team/other', 'v2', 'two'],
      ] as const) {
        await run(
          'skopeo',
          ['copy', '--src-tls-verify=false', `docker://${source.host}/${repository}:${tag}`, `oci:${dir}:${refName}`],
          { timeoutMs: 60_000 },
        );
      }
      expect(refNames(await readIndex(dir)).sort()).toEqual(['one', 'two']);

      const copied = JSON.parse(
        await wharfOk(['copy', '--json', '--plain-http', `oci:${dir}:two`, `${source.host}/team/picked:v9`]),
      ) as { source: string; digest: string };
      expect(copied).toMatchObject({ source: `oci:${dir}:two`, digest: other.root.digest });
      const picked = await fetch(`${source.url}/v2/team/picked/manifests/v9`, {
        method: 'HEAD',
        headers: { accept: other.root.mediaType },
      });
      expect(picked.headers.get('docker-content-digest')).toBe(other.root.digest);
      const left = await fetch(`${source.url}/v2/team/picked/manifests/${app.root.digest}`, { method: 'HEAD' });
      expect(left.status).toBe(404);

      const missing = await runWharf(
        ['copy', '-q', '--plain-http', `oci:${dir}:three`, `${source.host}/team/none:v1`],
        {
          timeoutMs: 90_000,
        },
      );
      expect(missing.code).toBe(1);
      expect(missing.stderr.trim()).toBe(`error: MANIFEST_UNKNOWN: ${dir}: index.json names no image "three"`);
      const none = await fetch(`${source.url}/v2/team/none/manifests/v1`, { method: 'HEAD' });
      expect(none.status).toBe(404);
    },
    timeout,
  );

  it(
    'refuses a ref.name outside the grammar and a suffix on docker-archive:, with one line',
    async () => {
      const bad = await runWharf(['copy', '-q', `${source.host}/team/app:v1`, `oci:${join(work, 'bad')}:v1:`]);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim()).toMatch(/^error: NAME_INVALID: "v1:" after oci:\S+: is no ref\.name/);
      const docker = await runWharf([
        'copy',
        '-q',
        `${source.host}/team/app:v1`,
        `docker-archive:${join(work, 'd.tar')}:app:v1`,
      ]);
      expect(docker.code).toBe(1);
      expect(docker.stderr.trim()).toMatch(
        /^error: UNSUPPORTED: docker-archive:\S+:app:v1: a reference after the path/,
      );
      await expect(stat(join(work, 'bad'))).rejects.toMatchObject({ code: 'ENOENT' });

      // A docker save tar read as oci-archive: has no ref.name to pick by.
      const saved = join(work, 'saved.tar');
      await run(
        'skopeo',
        [
          'copy',
          '--src-tls-verify=false',
          `docker://${source.host}/team/app:v1`,
          `docker-archive:${saved}:team/app:v1`,
        ],
        { timeoutMs: 60_000 },
      );
      const legacy = await runWharf(
        ['copy', '-q', '--plain-http', `oci-archive:${saved}:v1`, `${source.host}/team/none:v2`],
        {
          timeoutMs: 90_000,
        },
      );
      expect(legacy.code).toBe(1);
      expect(legacy.stderr.trim()).toBe(
        `error: UNSUPPORTED: ${saved}: a docker save tar, whose images have no ref.name to pick "v1" by`,
      );
      const none = await fetch(`${source.url}/v2/team/none/manifests/v2`, { method: 'HEAD' });
      expect(none.status).toBe(404);
    },
    timeout,
  );
});
