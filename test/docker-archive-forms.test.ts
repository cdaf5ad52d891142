/**
 * Issue 10, slice 2: the other docker-archive writers. skopeo's `docker-archive:`
 * (top-level `<diffid>.tar` layers, `<id>/layer.tar` symlinks to them) imports
 * and serves; newer docker's `docker save` (docker ≥ 25: an OCI layout whose
 * index.json names the image in `io.containerd.image.name` and gives ref.name a
 * bare tag, plus manifest.json) imports under the containerd name, byte for
 * byte. A symlink that leaves the archive is refused with the store unchanged.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run, withDeadline } from './support/run.js';
import { runWharf, spawnWharf } from './support/spawn-wharf.js';
import { snapshotStore } from './support/store-snapshot.js';
import { readTar, writeTar, type TarEntry } from './support/tar-surgery.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeoutMs = 120_000;

function skopeo(args: string[]): ReturnType<typeof run> {
  return run('skopeo', args, { timeoutMs: 60_000 });
}

describe.sequential('docker-archive forms from other writers', () => {
  let work: string;
  let source: WharfHandle;
  let image: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-docker-forms-'));
    source = await startWharf();
    image = await makeImage({ seed: testSeed('docker-archive forms'), layers: 2, mediaTypes: 'docker' });
    await pushTestImage(source.url, 'team/app', 'v1', image);
  }, timeoutMs);

  afterAll(async () => {
    await source?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it(
    "imports skopeo's docker-archive (layer.tar symlinks), served offline with docker's config digest",
    async () => {
      const archive = join(work, 'skopeo.tar');
      await skopeo([
        'copy',
        '--src-tls-verify=false',
        `docker://${source.host}/team/app:v1`,
        `docker-archive:${archive}:team/app:v1`,
      ]);
      const entries = await readTar(archive);
      // The form this test is about: symlinks from the legacy directories to the top-level layers.
      expect(entries.some((e) => e.header.type === 'symlink' && e.header.name.endsWith('/layer.tar'))).toBe(true);

      const data = join(work, 'skopeo-store');
      const imported = await runWharf(['import', archive, '--data', data], { timeoutMs: 60_000 });
      expect(imported.stdout).toContain('imported docker.io/team/app:v1');
      expect(imported.code).toBe(0);
      const served = await spawnWharf(['--data', data, '--offline']);
      try {
        const raw = await skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${served.host}/docker.io/team/app:v1`,
        ]);
        const manifest = JSON.parse(raw.stdout) as { config: { digest: string }; layers: { digest: string }[] };
        expect(manifest.config.digest).toBe(image.images[0]?.config.digest);
        expect(manifest.layers.map((l) => l.digest)).toEqual(image.images[0]?.diffIds);
        await skopeo([
          'copy',
          '--src-tls-verify=false',
          `docker://${served.host}/docker.io/team/app:v1`,
          `oci:${join(work, 'pulled')}:x`,
        ]);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }

      // A symlink pointing out of the archive is refused, and the store is left as it was.
      const hostile = entries.map((e) =>
        e.header.type === 'symlink' && e.header.name.endsWith('/layer.tar')
          ? { ...e, header: { ...e.header, linkname: '../../../etc/passwd' } }
          : e,
      );
      const bad = join(work, 'escape.tar');
      await writeTar(bad, hostile);
      const before = await snapshotStore(data);
      const refused = await runWharf(['import', bad, '--data', data, '--quiet'], { timeoutMs: 60_000 });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /^error: NAME_INVALID: symlink \w+\/layer\.tar points outside the archive[^\n]*\n$/,
      );
      expect(await snapshotStore(data)).toEqual(before);
    },
    timeoutMs,
  );

  it(
    "imports newer docker's OCI-form docker save under io.containerd.image.name, byte for byte",
    async () => {
      const bundle = join(work, 'export.tar');
      const exported = await runWharf(['export', 'team/app:v1', '-o', bundle, '--data', source.dataDir, '--quiet']);
      expect(exported.code).toBe(0);
      // skopeo reads the export as a docker-archive too (its manifest.json), with the same image.
      const fromDockerArchive = await skopeo(['inspect', '--config', '--raw', `docker-archive:${bundle}`]);
      expect(sha256Digest(fromDockerArchive.stdoutBuffer)).toBe(image.images[0]?.config.digest);
      // Rewritten as docker 25+ names it: ref.name a bare tag, the full name in containerd's annotation.
      const entries = await readTar(bundle);
      const index = entries.find((e) => e.header.name === 'index.json');
      if (index === undefined) throw new Error('no index.json');
      const parsed = JSON.parse(index.data.toString('utf8')) as {
        manifests: { annotations: Record<string, string> }[];
      };
      for (const m of parsed.manifests) {
        m.annotations = {
          'io.containerd.image.name': 'docker.io/library/app:v1',
          'org.opencontainers.image.ref.name': 'v1',
        };
      }
      index.data = Buffer.from(JSON.stringify(parsed));
      const dockerForm = join(work, 'docker25.tar');
      await writeTar(dockerForm, entries);

      const data = join(work, 'docker25-store');
      const imported = await runWharf(['import', dockerForm, '--data', data], { timeoutMs: 60_000 });
      expect(imported.stdout).toContain(`imported docker.io/library/app:v1 (${image.root.digest})`);
      expect(imported.code).toBe(0);
      const served = await spawnWharf(['--data', data, '--offline']);
      try {
        const raw = await skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${served.host}/docker.io/library/app:v1`,
        ]);
        expect(sha256Digest(raw.stdoutBuffer)).toBe(image.root.digest);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  it(
    'refuses a docker-archive naming a missing layer, a config that does not match its name, a truncated one; the store unchanged',
    async () => {
      const archive = join(work, 'refusals-src.tar');
      await skopeo([
        'copy',
        '--src-tls-verify=false',
        `docker://${source.host}/team/app:v1`,
        `docker-archive:${archive}:team/app:v1`,
      ]);
      const entries = await readTar(archive);
      const data = join(work, 'refusals-store');
      const control = await runWharf(['import', archive, '--data', data, '--quiet', '--name', 'team/control']);
      expect(control.code).toBe(0);
      const expectRefused = async (bundle: string, why: RegExp): Promise<void> => {
        const before = await snapshotStore(data);
        const result = await runWharf(['import', bundle, '--data', data, '--quiet'], { timeoutMs: 60_000 });
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(/^error: [^\n]+\n$/);
        expect(result.stderr).toMatch(why);
        expect(await snapshotStore(data)).toEqual(before);
      };
      // The biggest top-level .tar is a layer; without it (and the symlinks to it) manifest.json names a missing file.
      const layer = entries
        .filter((e) => e.header.type === 'file' && /^\w+\.tar$/.test(e.header.name))
        .sort((a, b) => b.data.length - a.data.length)[0];
      if (layer === undefined) throw new Error('no layer entry');
      const missing = join(work, 'missing-layer.tar');
      await writeTar(
        missing,
        entries.filter((e) => e !== layer),
      );
      await expectRefused(missing, /MANIFEST_BLOB_UNKNOWN: manifest\.json names layer \S+, which is missing/);

      // Round 3 of the planted-bug audit: a config whose bytes no longer match the name it is filed under
      // (an edited Env, say) was taken, under a new image id, when the check against its name was dropped.
      const config = entries.find((e) => e.header.type === 'file' && /^\w{64}\.json$/.test(e.header.name));
      if (config === undefined) throw new Error('no config entry');
      const edited = join(work, 'edited-config.tar');
      await writeTar(
        edited,
        entries.map((e) => (e === config ? { ...e, data: Buffer.concat([e.data, Buffer.from(' ')]) } : e)),
      );
      await expectRefused(
        edited,
        new RegExp(`DIGEST_INVALID: ${config.header.name.replace('.', '\\.')}: content does not match its name`),
      );

      // Round 5 (bounds): symlinks that point at each other end at the hop limit instead of looping
      // for ever, and a top-level .json (read whole, as a config) is capped at 16 MiB.
      const manifestEntry = entries.find((e) => e.header.name === 'manifest.json');
      if (manifestEntry === undefined) throw new Error('no manifest.json');
      const listed = JSON.parse(manifestEntry.data.toString('utf8')) as { Layers: string[] }[];
      const looped = listed.map((image) => ({ ...image, Layers: ['loop/a.tar', ...image.Layers.slice(1)] }));
      const link = (name: string, linkname: string): TarEntry =>
        ({ header: { name, type: 'symlink', linkname, size: 0, mode: 0o777 }, data: Buffer.alloc(0) }) as TarEntry;
      const cycle = join(work, 'symlink-cycle.tar');
      await writeTar(cycle, [
        ...entries.map((e) => (e === manifestEntry ? { ...e, data: Buffer.from(JSON.stringify(looped)) } : e)),
        link('loop/a.tar', 'b.tar'),
        link('loop/b.tar', 'a.tar'),
      ]);
      await expectRefused(cycle, /^error: NAME_INVALID: loop\/a\.tar: too many symlinks\n$/);
      const bigJson = join(work, 'big-json.tar');
      await writeTar(bigJson, [
        {
          header: { name: 'padding.json', type: 'file', size: 0, mode: 0o644 },
          data: Buffer.alloc(16 * 1024 * 1024 + 1, 0x20),
        } as TarEntry,
        ...entries,
      ]);
      await expectRefused(bigJson, /^error: MANIFEST_INVALID: padding\.json exceeds 16777216 bytes\n$/);
      // Symlinks are docker-archive's own form; a hard link is not, and is refused like any other kind.
      const hardLink = join(work, 'hard-link.tar');
      await writeTar(hardLink, [
        ...entries,
        {
          header: { name: 'extra.tar', type: 'link', linkname: layer.header.name, size: 0, mode: 0o644 },
          data: Buffer.alloc(0),
        } as TarEntry,
      ]);
      await expectRefused(
        hardLink,
        /^error: UNSUPPORTED: entry "extra\.tar" is a link: only files, directories and symlinks are accepted\n$/,
      );

      const whole = await readFile(archive);
      const offset = whole.indexOf(Buffer.from(layer.header.name));
      const truncated = join(work, 'truncated.tar');
      await writeFile(truncated, whole.subarray(0, offset + 512 + Math.floor(layer.data.length / 2)));
      await expectRefused(truncated, /truncated/);
    },
    timeoutMs,
  );
});
