/**
 * Round 7b of the planted-bug audit (docs/mutation-testing.md): what `wharf push-dir` writes, read
 * back from the registry. client-commands.test.ts pushes one folder twice (same digest) and
 * client-objects.test.ts its file modes; neither gave `--artifact-type` or `--annotation`, and
 * their folders were too small for readdir's order to differ from the sorted one. Here: the
 * artifactType given is the manifest's, the annotations are there sorted by key (so the order of
 * the flags does not change the digest), and the layers follow the paths' byte order whatever
 * order the files were created in.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeout = 120_000;
let work: string;
let wharf: WharfHandle;

async function wharfOk(args: string[]): Promise<string> {
  const result = await runWharf(args, { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`wharf ${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
  return result.stdout;
}

interface ArtifactManifest {
  mediaType: string;
  artifactType: string;
  config: { mediaType: string; size: number };
  layers: { mediaType: string; annotations: Record<string, string> }[];
  annotations?: Record<string, string>;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-push-dir-'));
  wharf = await startWharf();
}, timeout);

afterAll(async () => {
  await wharf?.close();
  await rm(work, { recursive: true, force: true });
});

describe('push-dir', () => {
  it(
    'writes the artifactType and annotations given, sorted by key, and the layers in path order',
    async () => {
      const dir = join(work, 'folder');
      await mkdir(join(dir, 'sub'), { recursive: true });
      // Created in reverse order: only a sort puts them in path order.
      const names = ['zeta.txt', 'sub/y.txt', 'sub/b.txt', 'm.txt', 'k.txt', 'f.txt', 'c.txt', 'a.txt'];
      for (const name of names) await writeFile(join(dir, name), `${name}\n`);
      const type = 'application/vnd.example.deploy.v1';
      const ref = `${wharf.host}/team/deploy:v1`;
      const pushed = JSON.parse(
        await wharfOk([
          'push-dir',
          '--json',
          '--artifact-type',
          type,
          '--annotation',
          'org.example.zone=eu',
          '--annotation',
          'org.example.app=web',
          dir,
          ref,
        ]),
      ) as { digest: string };
      const raw = await wharfOk(['manifest', '--raw', ref]);
      const manifest = JSON.parse(raw) as ArtifactManifest;
      expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(manifest.artifactType).toBe(type);
      expect(manifest.config).toMatchObject({ mediaType: 'application/vnd.oci.empty.v1+json', size: 2 });
      expect(Object.keys(manifest.annotations ?? {})).toEqual(['org.example.app', 'org.example.zone']);
      expect(manifest.annotations).toEqual({ 'org.example.app': 'web', 'org.example.zone': 'eu' });
      expect(manifest.layers.map((l) => l.annotations['org.opencontainers.image.title'])).toEqual([...names].sort());
      expect(new Set(manifest.layers.map((l) => l.mediaType))).toEqual(
        new Set(['application/vnd.oci.image.layer.v1.tar']),
      );

      // The same folder with the flags the other way round: the same bytes, the same digest.
      const again = JSON.parse(
        await wharfOk([
          'push-dir',
          '--json',
          '--annotation',
          'org.example.app=web',
          '--annotation',
          'org.example.zone=eu',
          '--artifact-type',
          type,
          dir,
          `${wharf.host}/team/deploy:v2`,
        ]),
      ) as { digest: string };
      expect(again.digest).toBe(pushed.digest);
    },
    timeout,
  );
});
