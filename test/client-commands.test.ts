/**
 * The wharf client commands (issue 11), run as the real command line against real registries on
 * loopback: CNCF distribution (anonymous and behind htpasswd, credentials from a temporary
 * DOCKER_CONFIG with a credential helper), wharf itself (referrers API), and wharf over TLS
 * trusted through a temporary certs.d folder.
 */
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { realRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, sha256Digest, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { writeTestCertificate } from './support/test-certificate.js';
import { startWharf, type WharfHandle } from './support/wharf.js';
import { startServer } from '../src/cli/start-server.js';

const timeout = 120_000;
let work: string;
let source: DistributionHandle;
let target: DistributionHandle;
let wharf: WharfHandle;
let image: TestImage;
/** DOCKER_CONFIG with a credential helper for `target` (htpasswd). */
let env: Record<string, string>;

async function wharfOk(args: string[]): Promise<string> {
  const result = await runWharf(args, { env, timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`wharf ${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
  return result.stdout;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-client-'));
  source = await startDistribution();
  target = await startDistribution({ htpasswd: { user: 'pusher', password: 'secret-pass' } });
  wharf = await startWharf();
  image = await makeImage({
    seed: 'client-commands',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
  });
  await pushTestImage(source.url, 'team/app', 'v1', image);
  const bin = join(work, 'bin');
  await mkdir(bin);
  const helper = join(bin, 'docker-credential-wharftest');
  await writeFile(
    helper,
    `#!/bin/sh\ncat > /dev/null\necho '{"ServerURL":"x","Username":"pusher","Secret":"secret-pass"}'\n`,
  );
  await chmod(helper, 0o755);
  await writeFile(join(work, 'config.json'), JSON.stringify({ credHelpers: { [target.host]: 'wharftest' } }));
  env = {
    DOCKER_CONFIG: join(work),
    PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}`,
    WHARF_CERTS_D: join(work, 'certs.d'),
  };
}, timeout);

afterAll(async () => {
  await Promise.allSettled([source?.close(), target?.close(), wharf?.close()]);
  await rm(work, { recursive: true, force: true });
});

describe('wharf copy', () => {
  it(
    'copies a multi-platform image to an authenticated registry keeping digests, and sends no blob twice',
    async () => {
      const out = await wharfOk(['copy', '--json', `${source.host}/team/app:v1`, `${target.host}/mirror/app:v1`]);
      const first = JSON.parse(out) as { digest: string; blobsSent: number };
      expect(first.digest).toBe(image.root.digest);
      expect(first.blobsSent).toBe(image.blobs.size);
      const digest = await wharfOk(['digest', `${target.host}/mirror/app:v1`]);
      expect(digest.trim()).toBe(image.root.digest);

      // The same image under another tag: every blob and manifest is there already (HEAD), nothing is uploaded.
      const before = realRequests(await target.settledLogs()).length;
      const again = JSON.parse(
        await wharfOk(['copy', '--json', `${source.host}/team/app:v1`, `${target.host}/mirror/app:v2`]),
      ) as {
        blobsSent: number;
        blobsPresent: number;
      };
      expect(again).toMatchObject({ blobsSent: 0, blobsPresent: image.blobs.size });
      const after = realRequests(await target.settledLogs()).slice(before);
      expect(after.filter((l) => l.method === 'PUT' && l.path.includes('/blobs/uploads/'))).toEqual([]);
      expect(after.filter((l) => l.method === 'PATCH')).toEqual([]);
      expect(after.filter((l) => l.method === 'GET' && l.path.includes('/blobs/'))).toEqual([]);
    },
    timeout,
  );

  it(
    'mounts blobs from another repository of the same registry instead of sending them',
    async () => {
      const before = realRequests(await source.settledLogs()).length;
      const result = JSON.parse(
        await wharfOk(['copy', '--json', `${source.host}/team/app:v1`, `${source.host}/other/app:v1`]),
      ) as { blobsSent: number; blobsMounted: number };
      expect(result).toMatchObject({ blobsSent: 0, blobsMounted: image.blobs.size });
      const after = realRequests(await source.settledLogs()).slice(before);
      expect(after.filter((l) => l.method === 'GET' && l.path.includes('/blobs/'))).toEqual([]);
      expect(after.filter((l) => l.method === 'POST' && l.status === 201)).toHaveLength(image.blobs.size);
    },
    timeout,
  );

  it(
    'round-trips through an oci-archive and keeps the digest',
    async () => {
      const tar = join(work, 'app.tar');
      await wharfOk(['copy', '-q', `${source.host}/team/app:v1`, `oci-archive:${tar}`]);
      await wharfOk(['copy', '-q', `oci-archive:${tar}`, `${wharf.host}/fromtar/app:v1`]);
      expect((await wharfOk(['digest', `${wharf.host}/fromtar/app:v1`])).trim()).toBe(image.root.digest);
    },
    timeout,
  );
});

describe('reading a registry', () => {
  it(
    'lists tags and repositories, prints manifests byte for byte and configs',
    async () => {
      expect((await wharfOk(['tags', `${source.host}/team/app`])).trim().split('\n')).toEqual(['v1']);
      expect(JSON.parse(await wharfOk(['repos', '--json', target.host]))).toMatchObject({
        repositories: ['mirror/app'],
      });
      const raw = await runWharf(['manifest', '--raw', `${source.host}/team/app:v1`], { env });
      expect(sha256Digest(Buffer.from(raw.stdout, 'utf8'))).toBe(image.root.digest);
      const config = JSON.parse(
        await wharfOk(['config', '--platform', 'linux/arm64', `${source.host}/team/app:v1`]),
      ) as {
        architecture: string;
      };
      expect(config.architecture).toBe('arm64');
    },
    timeout,
  );

  it(
    'fails with one plain error line and exit 1',
    async () => {
      const result = await runWharf(['manifest', `${source.host}/team/app:missing`], { env });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`error: MANIFEST_UNKNOWN: ${source.host}/team/app:missing: no such manifest\n`);
    },
    timeout,
  );

  it(
    'draws the tree of an index with a referrer under its subject',
    async () => {
      await pushTestImage(wharf.url, 'team/app', 'v1', image);
      const signature = Buffer.from('signature');
      const sigDigest = sha256Digest(signature);
      await putBlob(wharf.url, 'team/app', signature);
      await putBlob(wharf.url, 'team/app', Buffer.from('{}'));
      const referrer = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: 'application/vnd.example.signature',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest('{}'), size: 2 },
          layers: [{ mediaType: 'application/octet-stream', digest: sigDigest, size: signature.length }],
          subject: { mediaType: image.root.mediaType, digest: image.root.digest, size: image.root.size },
        }),
      );
      await putManifest(wharf.url, 'team/app', sha256Digest(referrer), referrer);
      const text = await wharfOk(['tree', `${wharf.host}/team/app:v1`]);
      const lines = text.trimEnd().split('\n');
      expect(lines[0]).toMatch(
        new RegExp(`^${wharf.host}/team/app:v1  index  sha256:${image.root.digest.slice(7, 19)}…  2 platforms, `),
      );
      expect(lines.filter((l) => /^[├└]── linux\//.test(l))).toHaveLength(2);
      // Two per platform, and the signature's own layer under the referrer.
      expect(lines.filter((l) => /[├└]── layer /.test(l))).toHaveLength(5);
      expect(lines.filter((l) => l.startsWith('└── referrer application/vnd.example.signature  sha256:'))).toHaveLength(
        1,
      );
      const json = JSON.parse(
        await wharfOk(['tree', '--json', '--data', wharf.dataDir, `${wharf.host}/team/app:v1`]),
      ) as {
        tree: { children: { kind: string; children: { cached?: boolean }[] }[] };
      };
      expect(json.tree.children.filter((c) => c.kind === 'referrer')).toHaveLength(1);
      expect(json.tree.children[0]?.children.every((c) => c.cached === true)).toBe(true);
    },
    timeout,
  );
});

describe('folders as artifacts', () => {
  it(
    'push-dir gives the same digest twice, pull-dir restores the folder exactly',
    async () => {
      const dir = join(work, 'folder');
      await mkdir(join(dir, 'sub'), { recursive: true });
      await writeFile(join(dir, 'a.yaml'), 'kind: Pod\n');
      await writeFile(join(dir, 'sub', 'run.sh'), '#!/bin/sh\n');
      await chmod(join(dir, 'sub', 'run.sh'), 0o755);
      for (const form of [[], ['--tar']]) {
        const one = JSON.parse(await wharfOk(['push-dir', '--json', ...form, dir, `${target.host}/dirs/x:one`])) as {
          digest: string;
        };
        const two = JSON.parse(await wharfOk(['push-dir', '--json', ...form, dir, `${target.host}/dirs/x:two`])) as {
          digest: string;
          blobsSent: number;
        };
        expect(two.digest).toBe(one.digest);
        expect(two.blobsSent).toBe(0);
        const out = join(work, `restored${form.join('')}`);
        await wharfOk(['pull-dir', `${target.host}/dirs/x:one`, out]);
        expect((await readdir(out)).sort()).toEqual(['a.yaml', 'sub']);
        expect(await readFile(join(out, 'sub', 'run.sh'), 'utf8')).toBe('#!/bin/sh\n');
      }
    },
    timeout,
  );

  it(
    'pull-dir refuses an entry that escapes the target and leaves nothing behind',
    async () => {
      const evil = Buffer.from('owned');
      await putBlob(wharf.url, 'evil/x', evil);
      await putBlob(wharf.url, 'evil/x', Buffer.from('{}'));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: 'application/vnd.wharf.dir.v1',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest('{}'), size: 2 },
          layers: [
            {
              mediaType: 'application/vnd.oci.image.layer.v1.tar',
              digest: sha256Digest(evil),
              size: evil.length,
              annotations: { 'org.opencontainers.image.title': '../escaped.txt' },
            },
          ],
        }),
      );
      await putManifest(wharf.url, 'evil/x', 'v1', manifest);
      const out = join(work, 'evil-out');
      const result = await runWharf(['pull-dir', `${wharf.host}/evil/x:v1`, out], { env });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: NAME_INVALID: entry "\.\.\/escaped\.txt" escapes the target folder/);
      expect((await readdir(work)).filter((n) => n.includes('escaped') || n.startsWith('.evil-out'))).toEqual([]);
    },
    timeout,
  );
});

describe('TLS', () => {
  it(
    'trusts a self-signed registry through a certs.d folder, and refuses it without',
    async () => {
      const tlsDir = join(work, 'tls');
      await mkdir(tlsDir);
      const files = await writeTestCertificate(tlsDir, 'registry');
      const data = join(work, 'tls-data');
      const server = await startServer({
        dataDir: data,
        host: '127.0.0.1',
        port: 0,
        logLevel: 'silent',
        upstreams: [],
        tls: files,
      });
      try {
        const host = `127.0.0.1:${server.port}`;
        const refused = await runWharf(['copy', '-q', `${source.host}/team/app:v1`, `${host}/tls/app:v1`], {
          env: { ...env, WHARF_CERTS_D: join(work, 'empty-certs.d') },
        });
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/^error: UNAVAILABLE: .*(self.signed|certificate)/i);
        await mkdir(join(work, 'certs.d', host), { recursive: true });
        await writeFile(join(work, 'certs.d', host, 'ca.crt'), await readFile(files.cert));
        await wharfOk(['copy', '-q', `${source.host}/team/app:v1`, `${host}/tls/app:v1`]);
        expect((await wharfOk(['digest', `${host}/tls/app:v1`])).trim()).toBe(image.root.digest);
      } finally {
        await server.close();
      }
    },
    timeout,
  );
});

async function putBlob(base: string, repo: string, bytes: Buffer): Promise<void> {
  const response = await request(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256Digest(bytes)}`, {
    method: 'POST',
    body: bytes,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
  });
  await response.body.text();
  if (response.statusCode !== 201) throw new Error(`POST blob: ${response.statusCode}`);
}

async function putManifest(base: string, repo: string, reference: string, bytes: Buffer): Promise<void> {
  const response = await request(`${base}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  await response.body.text();
  if (response.statusCode !== 201) throw new Error(`PUT manifest: ${response.statusCode}`);
}
