/**
 * Issue 11, the rest of `wharf copy` and `wharf tree` end to end, as the real command line:
 * - to a registry with Bearer token auth (wharf with users: its /token endpoint), credentials from a
 *   temporary DOCKER_CONFIG, including a cross-repository mount, whose token needs two scopes
 *   (push on the target, pull on the source repository);
 * - `--referrers`: a signature follows its subject, between registries and into an oci-archive
 *   (distribution 2.8 has no referrers API: the fallback tag is read);
 * - `docker-archive:` then `docker load` on a private dockerd: the full name (registry port included),
 *   image id = config digest, and it runs; `wharf import` of the same tar names it as the mirror does;
 * - `wharf tree` against a wharf mirror's URL marks the blobs the mirror holds (Cache-Status).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { startDockerd, type DockerdHandle } from './support/dockerd.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { makeSignature, pushSignature } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { makeRunnableImage } from './support/runnable-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { readTar } from './support/tar-surgery.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeout = 240_000;
const mirrored = 'registry.example.test';

let work: string;
let source: DistributionHandle;
let authed: WharfHandle;
let image: TestImage;
let signature: TestImage;
/** DOCKER_CONFIG with alice's login for `authed`. */
let env: Record<string, string>;

async function wharfOk(args: string[], timeoutMs = 60_000): Promise<string> {
  const result = await runWharf(args, { env, timeoutMs });
  if (result.code !== 0) throw new Error(`wharf ${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
  return result.stdout;
}

function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-client-copy-'));
  source = await startDistribution();
  image = await makeImage({
    seed: testSeed('client copy e2e'),
    layers: 2,
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
  });
  signature = makeSignature(image.root, 'signed for client copy');
  await pushTestImage(source.url, 'team/app', 'v1', image);
  await pushSignature(source.url, 'team/app', image.root, signature, { tagSchema: true });
  authed = await startWharf({
    auth: {
      users: new Map([['alice', bcrypt.hashSync('alice-pw', 4)]]),
      access: [{ repositories: ['team/**'], users: ['alice'], allow: ['pull', 'push', 'delete'] }],
      tokenTtlMs: 60_000,
      realm: undefined,
    },
  });
  await writeFile(
    join(work, 'config.json'),
    JSON.stringify({ auths: { [authed.host]: { auth: Buffer.from('alice:alice-pw').toString('base64') } } }),
  );
  env = { DOCKER_CONFIG: work, WHARF_CERTS_D: join(work, 'certs.d') };
}, timeout);

afterAll(async () => {
  await Promise.allSettled([source?.close(), authed?.close()]);
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('wharf copy to a registry with Bearer token auth', () => {
  it(
    'copies with a token from /token, then mounts across repositories with a two-scope token',
    async () => {
      const challenge = await fetch(`${authed.url}/v2/`, { signal: AbortSignal.timeout(30_000) });
      expect(challenge.headers.get('www-authenticate')).toMatch(/^Bearer realm="[^"]+\/token"/);

      const first = JSON.parse(
        await wharfOk(['copy', '--json', `${source.host}/team/app:v1`, `${authed.host}/team/app:v1`]),
      ) as { digest: string; blobsSent: number; blobsMounted: number };
      expect(first).toMatchObject({ digest: image.root.digest, blobsSent: image.blobs.size, blobsMounted: 0 });
      expect((await wharfOk(['digest', `${authed.host}/team/app:v1`])).trim()).toBe(image.root.digest);

      // Same registry, another repository: mounted, not sent. wharf mounts only what the token may read,
      // so this needs pull on team/app and push on team/copy in one token.
      const mounted = JSON.parse(
        await wharfOk(['copy', '--json', `${authed.host}/team/app:v1`, `${authed.host}/team/copy:v1`]),
      ) as { digest: string; blobsSent: number; blobsMounted: number };
      expect(mounted).toMatchObject({ digest: image.root.digest, blobsSent: 0, blobsMounted: image.blobs.size });
      expect((await wharfOk(['digest', `${authed.host}/team/copy:v1`])).trim()).toBe(image.root.digest);

      // Without credentials the same copy is refused with the registry's own code.
      const anonymous = await runWharf(['copy', `${source.host}/team/app:v1`, `${authed.host}/team/anon:v1`], {
        env: { DOCKER_CONFIG: join(work, 'nobody'), WHARF_CERTS_D: join(work, 'certs.d') },
        timeoutMs: 60_000,
      });
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr).toMatch(/^error: (UNAUTHORIZED|DENIED): /);
    },
    timeout,
  );
});

describe('wharf copy --referrers', () => {
  it(
    'carries the signature to another registry (referrers API there) and into an oci-archive',
    async () => {
      const result = JSON.parse(
        await wharfOk(['copy', '--json', '--referrers', `${source.host}/team/app:v1`, `${authed.host}/team/signed:v1`]),
      ) as { digest: string; referrers: number };
      expect(result).toMatchObject({ digest: image.root.digest, referrers: 1 });
      const listed = await fetch(`${authed.url}/v2/team/signed/referrers/${image.root.digest}`, {
        headers: basic('alice', 'alice-pw'),
        signal: AbortSignal.timeout(30_000),
      });
      const index = (await listed.json()) as { manifests: { digest: string; artifactType?: string }[] };
      expect(index.manifests.map((m) => m.digest)).toEqual([signature.root.digest]);

      const tar = join(work, 'signed.tar');
      await wharfOk(['copy', '-q', '--referrers', `${source.host}/team/app:v1`, `oci-archive:${tar}`]);
      const entries = await readTar(tar);
      const layout = JSON.parse(entries.find((e) => e.header.name === 'index.json')?.data.toString() ?? '{}') as {
        manifests: { digest: string }[];
      };
      expect(layout.manifests.map((m) => m.digest)).toEqual([image.root.digest, signature.root.digest]);
    },
    timeout,
  );
});

describe('wharf copy … docker-archive: then docker load', () => {
  let docker: DockerdHandle | undefined;

  afterAll(async () => {
    await docker?.close();
  });

  it(
    'loads into a real dockerd with the config digest as image id, and runs',
    async () => {
      const runnable = await makeRunnableImage('copied-by-wharf');
      await pushTestImage(source.url, 'team/run', 'v1', runnable);
      const tar = join(work, 'run-docker.tar');
      await wharfOk(['copy', '-q', `${source.host}/team/run:v1`, `docker-archive:${tar}`]);
      expect((await readFile(tar)).length).toBeGreaterThan(0);
      docker = await startDockerd();
      const loaded = await docker.docker(['load', '--input', tar]);
      // The archive keeps the full name, registry port included, as docker's own RepoTags do.
      const full = `${source.host}/team/run:v1`;
      expect(loaded.stdout).toContain(`Loaded image: ${full}`);
      const id = await docker.docker(['image', 'inspect', '--format', '{{.Id}}', full]);
      expect(id.stdout.trim()).toBe(runnable.images[0]?.config.digest);
      const ran = await docker.docker(['run', '--rm', '--network', 'none', full]);
      expect(ran.stdout.trim()).toBe('copied-by-wharf');

      // wharf import names it as the mirror names that host: 127.0.0.1-<port>/team/run.
      const data = join(work, 'run-imported');
      await wharfOk(['import', tar, '--data', data, '--quiet']);
      const mirrorName = `${source.host.replace(':', '-')}/team/run`;
      const listed = await wharfOk(['ls', '--json', '--data', data]);
      expect(listed).toContain(mirrorName);
      expect(listed).toContain(runnable.root.digest);
    },
    timeout,
  );
});

describe('wharf tree against a wharf mirror URL', () => {
  it(
    "marks what the mirror holds, from its Cache-Status answers; another registry's tree has no marks",
    async () => {
      const mirror = await startWharf({ upstreams: [{ host: mirrored, url: source.url, prefetch: false }] });
      try {
        const [amd64, arm64] = image.images;
        if (amd64 === undefined || arm64 === undefined) throw new Error('two platforms expected');
        // A client pulls linux/amd64 through the mirror: its manifest, config and layers are held.
        const name = `${mirrored}/team/app`;
        await fetch(`${mirror.url}/v2/${name}/manifests/${amd64.manifest.digest}`, {
          signal: AbortSignal.timeout(30_000),
        }).then((r) => r.arrayBuffer());
        for (const blob of [amd64.config, ...amd64.layers]) {
          const response = await fetch(`${mirror.url}/v2/${name}/blobs/${blob.digest}`, {
            signal: AbortSignal.timeout(30_000),
          });
          expect(response.headers.get('cache-status')).toBe('wharf; fwd=miss; stored');
          await response.arrayBuffer();
        }
        const tree = JSON.parse(await wharfOk(['tree', '--json', `${mirror.host}/${name}:v1`])) as {
          tree: { children: { label?: string; children: { digest: string; cached?: boolean }[] }[] };
        };
        const platform = (label: string): { digest: string; cached?: boolean }[] =>
          tree.tree.children.find((c) => c.label === label)?.children ?? [];
        expect(platform('linux/amd64').map((c) => c.cached)).toEqual([true, true, true]);
        // arm64 shares no blob with amd64 here: none held (the tree's HEADs asked the upstream, kept nothing).
        expect(platform('linux/arm64/v8').map((c) => c.cached)).toEqual([false, false, false]);
        const text = await wharfOk(['tree', `${mirror.host}/${name}:v1`]);
        expect(text.split('\n').filter((line) => line.endsWith('  cached'))).toHaveLength(3);

        const plain = JSON.parse(await wharfOk(['tree', '--json', `${source.host}/team/app:v1`])) as typeof tree;
        expect(JSON.stringify(plain)).not.toContain('"cached"');
      } finally {
        await mirror.close();
      }
    },
    timeout,
  );
});
