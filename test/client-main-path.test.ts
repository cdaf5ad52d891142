/**
 * Round 13d of the planted-bug audit (docs/mutation-testing.md): the client commands' main paths,
 * run as the real command line against wharf on loopback, where an obvious one-line bug passed
 * every other test: `wharf copy --quiet` printing its report anyway; push-dir's `--tar` layer declared
 * an uncompressed tar though it is gzip'd (pull-dir reads the annotation, not the media type), a
 * folder's dotfiles left out (no test folder had one), and the empty config never sent (wharf takes
 * a manifest whose config it lacks; a registry that checks refuses it), and a `--tar` entry written
 * through a symlink the same tar made (a link to `.` that makes a later `..` link land outside), and
 * `wharf blob` given `repo:tag` (the tag silently dropped, as if the blob were the tag's), `--tar`
 * losing an empty folder (no folder entries in the tar), and `--annotation =value` taken with an
 * empty key.
 */
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from './support/http.js';
import { makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeout = 120_000;
let work: string;
let wharf: WharfHandle;
let image: TestImage;

function wharfRun(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWharf(args, {
    env: { DOCKER_CONFIG: join(work, 'no-docker-config'), WHARF_LOG_LEVEL: 'silent' },
    timeoutMs: 60_000,
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-client-main-'));
  wharf = await startWharf();
  image = await makeImage({ seed: testSeed('client main path'), layers: 1, layerSize: 1024 });
  await pushTestImage(wharf.url, 'src/app', 'v1', image);
}, timeout);

afterAll(async () => {
  await wharf?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('wharf copy --quiet', () => {
  it(
    'prints nothing on stdout, and the copy is done',
    async () => {
      const result = await wharfRun(['copy', '--quiet', `${wharf.host}/src/app:v1`, `${wharf.host}/dst/app:v1`]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('');
      const again = await wharfRun(['copy', `${wharf.host}/src/app:v1`, `${wharf.host}/dst/app:v1`]);
      expect(again.stdout).toBe(`${wharf.host}/dst/app:v1 is already ${image.root.digest}: nothing to copy\n`);
    },
    timeout,
  );
});

interface DirManifest {
  artifactType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: { mediaType: string; annotations: Record<string, string> }[];
}

async function pushedManifest(ref: string): Promise<DirManifest> {
  const result = await wharfRun(['manifest', '--raw', ref]);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as DirManifest;
}

async function blobStatus(repo: string, digest: string): Promise<number> {
  const response = await call(wharf.url, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  await response.arrayBuffer();
  return response.status;
}

/** A folder with a dotfile at its top, one in a subfolder, and (for --tar) a symlink and an empty folder. */
async function makeFolder(dir: string, withLink: boolean): Promise<void> {
  await mkdir(join(dir, 'conf'), { recursive: true });
  await writeFile(join(dir, '.env'), 'MODE=prod\n');
  await writeFile(join(dir, 'conf', '.hidden.yaml'), 'a: 1\n');
  await writeFile(join(dir, 'conf', 'app.yaml'), 'b: 2\n');
  if (!withLink) return;
  await symlink('conf/app.yaml', join(dir, 'app.yaml'));
  // An empty folder: only the tar's own folder entry brings it back.
  await mkdir(join(dir, 'empty'));
}

describe('push-dir and pull-dir, the main path', () => {
  it(
    'one layer per file, dotfiles included, with the empty config sent, and every file back',
    async () => {
      const dir = join(work, 'files');
      await makeFolder(dir, false);
      const ref = `${wharf.host}/team/files:v1`;
      const pushed = await wharfRun(['push-dir', dir, ref]);
      expect(pushed.stderr).toBe('');
      const manifest = await pushedManifest(ref);
      expect(manifest.config).toEqual({
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
        size: 2,
      });
      expect(await blobStatus('team/files', manifest.config.digest)).toBe(200);
      expect(manifest.layers.map((l) => l.annotations['org.opencontainers.image.title'])).toEqual([
        '.env',
        'conf/.hidden.yaml',
        'conf/app.yaml',
      ]);
      const out = join(work, 'files-out');
      expect((await wharfRun(['pull-dir', ref, out])).code).toBe(0);
      expect((await readdir(out)).sort()).toEqual(['.env', 'conf']);
      expect(await readFile(join(out, 'conf', '.hidden.yaml'), 'utf8')).toBe('a: 1\n');
    },
    timeout,
  );

  it(
    "--tar: one gzip'd tar layer, declared as such, and the tree back with its dotfiles and links",
    async () => {
      const dir = join(work, 'tree');
      await makeFolder(dir, true);
      const ref = `${wharf.host}/team/tree:v1`;
      const pushed = await wharfRun(['push-dir', '--tar', dir, ref]);
      expect(pushed.stderr).toBe('');
      const manifest = await pushedManifest(ref);
      expect(manifest.artifactType).toBe('application/vnd.wharf.dir.v1');
      expect(manifest.layers).toHaveLength(1);
      expect(manifest.layers[0]).toMatchObject({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        annotations: { 'io.wharf.dir.tar': 'true' },
      });
      const out = join(work, 'tree-out');
      expect((await wharfRun(['pull-dir', ref, out])).code).toBe(0);
      expect((await readdir(out)).sort()).toEqual(['.env', 'app.yaml', 'conf', 'empty']);
      expect(await readdir(join(out, 'empty'))).toEqual([]);
      expect((await readdir(join(out, 'conf'))).sort()).toEqual(['.hidden.yaml', 'app.yaml']);
      expect(await readlink(join(out, 'app.yaml'))).toBe('conf/app.yaml');
      expect(await readFile(join(out, '.env'), 'utf8')).toBe('MODE=prod\n');
    },
    timeout,
  );
});

/** A gzip'd tar of `entries`, in order. */
async function tarGz(
  entries: { name: string; type: 'file' | 'symlink'; data?: string; linkname?: string }[],
): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    tar.on('end', resolve);
    tar.on('error', reject);
  });
  for (const entry of entries) {
    if (entry.type === 'symlink') tar.entry({ name: entry.name, type: 'symlink', linkname: entry.linkname ?? '' });
    else tar.entry({ name: entry.name, type: 'file' }, entry.data ?? '');
  }
  tar.finalize();
  await ended;
  return gzipSync(Buffer.concat(chunks));
}

async function pushBlob(repo: string, bytes: Buffer): Promise<void> {
  const response = await call(wharf.url, `/v2/${repo}/blobs/uploads/?digest=${sha256Digest(bytes)}`, {
    method: 'POST',
    body: bytes,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  await response.arrayBuffer();
  expect(response.status).toBe(201);
}

describe('push-dir --annotation', () => {
  it(
    'refuses an annotation without a key (=value) with one line, and pushes nothing',
    async () => {
      const dir = join(work, 'annotated');
      await mkdir(dir);
      await writeFile(join(dir, 'a.txt'), 'a\n');
      const ref = `${wharf.host}/team/annotated:v1`;
      const result = await wharfRun(['push-dir', '--annotation', '=eu', dir, ref]);
      expect(result.stderr).toBe('error: UNSUPPORTED: --annotation "=eu": expected key=value\n');
      expect(result.code).toBe(1);
      expect((await wharfRun(['manifest', '--raw', ref])).code).toBe(1);
    },
    timeout,
  );
});

describe('pull-dir of a --tar artifact', () => {
  it(
    'refuses an entry under a symlink the same tar made, before anything lands outside the target',
    async () => {
      // `l1` → `.` is inside; `l1/l2` → `..` looks inside from `l1`, but written through the link it
      // is `./l2` → `..`, the target's parent: `l1/l2/escaped.txt` would land beside the target.
      const layer = await tarGz([
        { name: 'l1', type: 'symlink', linkname: '.' },
        { name: 'l1/l2', type: 'symlink', linkname: '..' },
        { name: 'l1/l2/escaped.txt', type: 'file', data: 'owned\n' },
      ]);
      const config = Buffer.from('{}');
      await pushBlob('evil/tar', layer);
      await pushBlob('evil/tar', config);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: 'application/vnd.wharf.dir.v1',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(config), size: 2 },
          layers: [
            {
              mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
              digest: sha256Digest(layer),
              size: layer.length,
              annotations: { 'io.wharf.dir.tar': 'true' },
            },
          ],
        }),
      );
      const put = await call(wharf.url, '/v2/evil/tar/manifests/v1', {
        method: 'PUT',
        body: manifest,
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      await put.arrayBuffer();
      expect(put.status).toBe(201);
      const parent = join(work, 'evil-parent');
      await mkdir(parent);
      const result = await wharfRun(['pull-dir', `${wharf.host}/evil/tar:v1`, join(parent, 'out')]);
      expect(result.stderr).toBe('error: NAME_INVALID: entry "l1/l2" is written through a symlink\n');
      expect(result.code).toBe(1);
      expect(await readdir(parent)).toEqual([]);
    },
    timeout,
  );
});

describe('wharf blob with a tag or digest in the repository', () => {
  it(
    'refuses it with one NAME_INVALID line (a blob belongs to a repository, not to a tag)',
    async () => {
      for (const command of ['head', 'get']) {
        const repo = `${wharf.host}/src/app:v1`;
        const result = await wharfRun(['blob', command, repo, image.images[0]?.config.digest ?? '']);
        expect(result.stdout).toBe('');
        expect(result.stderr).toBe(`error: NAME_INVALID: ${repo}: name a repository, without tag or digest\n`);
        expect(result.code).toBe(1);
      }
    },
    timeout,
  );
});
