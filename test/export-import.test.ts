/**
 * Issue 10, the round trip through a bundle with real tools: a multi-platform
 * image pushed to wharf is exported (beside the running server) to an OCI
 * layout tar, imported into a fresh data directory, served `--offline`, and
 * pulled by skopeo by tag and by digest with identical digests; skopeo reads
 * the exported tar (`oci-archive:`), and a file skopeo writes (`oci-archive:`)
 * imports. Import refuses to run while `wharf serve` holds the data directory.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeImage,
  refNameAnnotation,
  sha256Digest,
  testSeed,
  writeOciLayout,
  type Descriptor,
  type TestImage,
} from './support/make-image.js';
import { readTar } from './support/tar-surgery.js';
import { pushTestImage } from './support/push-image.js';
import { run, withDeadline } from './support/run.js';
import { runWharf, spawnWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeoutMs = 120_000;

function skopeo(args: string[]): ReturnType<typeof run> {
  return run('skopeo', args, { timeoutMs: 60_000 });
}

describe('wharf export and import', () => {
  let work: string;
  let source: WharfHandle;
  let image: TestImage;
  let bundle: string;
  const target = (): string => join(work, 'target');

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-export-'));
    source = await startWharf();
    image = await makeImage({
      seed: testSeed('export-import'),
      layers: 2,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    await pushTestImage(source.url, 'team/app', 'v1', image);
    bundle = join(work, 'bundle.tar');
  }, timeoutMs);

  afterAll(async () => {
    await source?.close();
    await rm(work, { recursive: true, force: true });
  });

  it(
    'exports beside a running serve, imports into a fresh store, serves offline byte for byte',
    async () => {
      const exported = await runWharf(['export', 'team/app:v1', '-o', bundle, '--data', source.dataDir], {
        timeoutMs: 60_000,
      });
      expect(exported.stderr).toContain('exported 1 image');
      expect(exported.code).toBe(0);

      const imported = await runWharf(['import', bundle, '--data', target()], { timeoutMs: 60_000 });
      // Not a terminal: plain progress lines on stderr, the summary on stdout.
      expect(imported.stderr).toContain(`team/app:v1: done (${image.root.digest})`);
      expect(imported.stdout).toContain(`imported team/app:v1 (${image.root.digest})`);
      expect(imported.code).toBe(0);

      const served = await spawnWharf(['--data', target(), '--offline']);
      try {
        const byTag = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/team/app:v1`]);
        expect(sha256Digest(byTag.stdoutBuffer), 'index digest by tag').toBe(image.root.digest);
        for (const platform of image.images) {
          const ref = `docker://${served.host}/team/app@${platform.manifest.digest}`;
          const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', ref]);
          expect(sha256Digest(raw.stdoutBuffer), 'platform manifest by digest').toBe(platform.manifest.digest);
        }
        // A full pull of every platform: each blob served and verified by skopeo.
        const pulled = join(work, 'pulled');
        await skopeo([
          'copy',
          '--all',
          '--src-tls-verify=false',
          `docker://${served.host}/team/app:v1`,
          `oci:${pulled}:v1`,
        ]);
        for (const [digest, bytes] of image.blobs) {
          const [, hex] = digest.split(':');
          expect(sha256Digest(await readFile(join(pulled, 'blobs', 'sha256', hex ?? ''))), digest).toBe(
            sha256Digest(bytes),
          );
        }

        // The data directory is held: import refuses, naming the holder, before touching anything.
        const refused = await runWharf(['import', bundle, '--data', target()], { timeoutMs: 30_000 });
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/^error: data directory .* is in use by wharf \(pid \d+\)/);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  it(
    'imports a layout directory under its full names and serves them at /v2/<host>/<path> offline',
    async () => {
      const layout = join(work, 'layout-dir');
      await writeOciLayout(image, layout, 'docker.io/library/alpine:3.20');
      const data = join(work, 'mirrored');
      const imported = await runWharf(['import', layout, '--data', data, '--quiet'], { timeoutMs: 60_000 });
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      const served = await spawnWharf(['--data', data, '--offline']);
      try {
        const response = await fetch(`${served.url}/v2/docker.io/library/alpine/manifests/3.20`, {
          headers: { accept: image.root.mediaType },
          signal: AbortSignal.timeout(30_000),
        });
        expect(response.status).toBe(200);
        expect(response.headers.get('docker-content-digest')).toBe(image.root.digest);
        expect(sha256Digest(Buffer.from(await response.arrayBuffer()))).toBe(image.root.digest);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
      // Exported again, the layout names it by its full name.
      const again = join(work, 'again.tar');
      const exported = await runWharf(
        ['export', 'docker.io/library/alpine:3.20', '-o', again, '--data', data, '--quiet'],
        {
          timeoutMs: 60_000,
        },
      );
      expect(exported.code).toBe(0);
      const entries = await readTar(again);
      const indexEntry = entries.find((e) => e.header.name === 'index.json');
      const index = JSON.parse(indexEntry?.data.toString() ?? '{}') as { manifests: Descriptor[] };
      expect(index.manifests.map((m) => [m.digest, m.annotations?.[refNameAnnotation]])).toEqual([
        [image.root.digest, 'docker.io/library/alpine:3.20'],
      ]);
      expect(entries[0]?.header.name, 'oci-layout comes first').toBe('oci-layout');
    },
    timeoutMs,
  );

  it(
    "reads a ref.name without a registry host as docker does: containerd's ns=docker.io request finds it offline",
    async () => {
      // What `skopeo copy docker://alpine:3.20 oci-archive:f.tar:alpine:3.20` writes: a familiar name.
      const layout = join(work, 'familiar');
      await writeOciLayout(image, layout, 'alpine:3.20');
      const data = join(work, 'familiar-data');
      const imported = await runWharf(['import', layout, '--data', data], { timeoutMs: 60_000 });
      expect(imported.stdout).toContain(`imported docker.io/library/alpine:3.20 (${image.root.digest})`);
      expect(imported.code).toBe(0);
      // docker.io is a built-in upstream: offline it is never dialled, but it names the host ns= asks for.
      const served = await spawnWharf(['--data', data, '--offline']);
      try {
        const response = await fetch(`${served.url}/v2/library/alpine/manifests/3.20?ns=docker.io`, {
          method: 'HEAD',
          headers: { accept: image.root.mediaType },
          signal: AbortSignal.timeout(30_000),
        });
        expect(response.status).toBe(200);
        expect(response.headers.get('docker-content-digest')).toBe(image.root.digest);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  // Round 4 of the planted-bug audit: the temp file of a failed export was left beside the output.
  it(
    'a failed export leaves neither the archive nor its temp file',
    async () => {
      // A store whose last layer file is gone: the export fails after it has written part of the tar.
      const broken = await startWharf({ dataDir: join(work, 'broken-store') });
      try {
        await pushTestImage(broken.url, 'team/app', 'v1', image);
      } finally {
        await broken.close();
      }
      const lost = image.images[1]?.layers[1]?.digest ?? '';
      const hex = lost.slice('sha256:'.length);
      await rm(join(broken.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex));
      const dir = join(work, 'failed-export');
      await mkdir(dir);
      const failed = await runWharf(['export', 'team/app:v1', '-o', join(dir, 'app.tar'), '--data', broken.dataDir], {
        timeoutMs: 60_000,
      });
      expect(failed.code).toBe(1);
      expect(await readdir(dir)).toEqual([]);
    },
    timeoutMs,
  );

  it(
    'writes a tar that skopeo reads as oci-archive:, with the original digests',
    async () => {
      const out = join(work, 'from-archive');
      await skopeo(['copy', '--all', `oci-archive:${bundle}:team/app:v1`, `oci:${out}:v1`]);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      expect(index.manifests.map((m) => m.digest)).toEqual([image.root.digest]);
    },
    timeoutMs,
  );

  it(
    'imports a file written by skopeo copy … oci-archive:, under --name',
    async () => {
      const archive = join(work, 'skopeo.tar');
      await skopeo([
        'copy',
        '--all',
        '--src-tls-verify=false',
        `docker://${source.host}/team/app:v1`,
        `oci-archive:${archive}:v2`,
      ]);
      const fresh = join(work, 'from-skopeo');
      const bare = await runWharf(['import', archive, '--data', fresh, '--quiet'], { timeoutMs: 60_000 });
      expect(bare.code, 'a bare tag needs --name').toBe(1);
      expect(bare.stderr).toMatch(/^error: NAME_INVALID: .*"v2", a tag without a repository: pass --name\n$/);
      const named = await runWharf(['import', archive, '--data', fresh, '--name', 'mirror/app', '--quiet'], {
        timeoutMs: 60_000,
      });
      expect(named.stderr).toBe('');
      expect(named.stdout).toBe('');
      expect(named.code).toBe(0);
    },
    timeoutMs,
  );
});
