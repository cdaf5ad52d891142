/**
 * The inspecting client commands at their edges (round 11b of planted bugs). In-process against
 * wharf on loopback: `wharf tree`'s walk of an index with a buildx attestation entry (not a
 * platform) and a signature on one platform's manifest (its referrer is drawn there, and counted in
 * no total; `--no-referrers` leaves it out), a config whose bytes are not its digest's, and `--certs-dir` winning over
 * WHARF_CERTS_D. Spawned against a scripted registry: `wharf tags` of an unknown repository (exit 1)
 * and its `--json` naming the registry, `wharf digest` of a `name:tag@digest` (the digest pins).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientContext } from '../src/cli/client/client-context.js';
import { buildImageTree, type TreeNode } from '../src/cli/client/image-tree.js';
import { readSmallBlob } from '../src/cli/client/small-blob.js';
import type { Digest } from '../src/oci/digest.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { headManifest } from '../src/upstream/registry-reads.js';
import { call } from './support/http.js';
import { makeImage, sha256Digest, type TestImage } from './support/make-image.js';
import { makeSignature, manifestBlob } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { sendBytes, sendError, sendJson, sendManifest, startScriptedRegistry } from './support/scripted-registry.js';
import { runWharf } from './support/spawn-wharf.js';
import { writeTestCertificate } from './support/test-certificate.js';
import { startWharf, type WharfHandle } from './support/wharf.js';
import { startServer } from '../src/cli/start-server.js';

const timeout = 120_000;
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
let work: string;
let wharf: WharfHandle;
let client: RegistryClient;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-inspect-edges-'));
  wharf = await startWharf();
  client = new RegistryClient({
    host: wharf.host,
    url: wharf.url,
    env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
  });
}, timeout);

afterAll(async () => {
  await client?.close();
  await wharf?.close();
  await rm(work, { recursive: true, force: true });
});

function sumOf(image: TestImage, platform: number): number {
  const found = image.images[platform];
  if (found === undefined) throw new Error('no such platform');
  return [found.config, ...found.layers].reduce((sum, d) => sum + d.size, 0);
}

describe('wharf tree', () => {
  it(
    'counts an attestation as no platform, draws a platform signature under its platform, counts it nowhere; --no-referrers skips it',
    async () => {
      const image = await makeImage({
        seed: 'inspect-edges/tree',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
      });
      await pushTestImage(wharf.url, 'team/tree', 'base', image);
      const amd = image.images[0]?.manifest;
      if (amd === undefined) throw new Error('no amd64 image');
      // buildx's provenance: an image manifest under platform unknown/unknown, marked by an annotation.
      const attestation = makeSignature(amd, 'provenance');
      const { subject: _subject, ...unsubjected } = JSON.parse(attestation.root.bytes.toString('utf8')) as {
        subject: unknown;
      };
      const attestationRoot = manifestBlob(unsubjected);
      await pushTestImage(wharf.url, 'team/tree', attestationRoot.digest, { ...attestation, root: attestationRoot });
      const index = manifestBlob({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          ...(JSON.parse(image.root.bytes.toString('utf8')) as { manifests: unknown[] }).manifests,
          {
            mediaType: ociManifest,
            digest: attestationRoot.digest,
            size: attestationRoot.size,
            platform: { os: 'unknown', architecture: 'unknown' },
            annotations: {
              'vnd.docker.reference.type': 'attestation-manifest',
              'vnd.docker.reference.digest': amd.digest,
            },
          },
        ],
      });
      const put = await call(wharf.url, '/v2/team/tree/manifests/v1', {
        method: 'PUT',
        body: index.bytes,
        headers: { 'Content-Type': index.mediaType },
      });
      await put.arrayBuffer();
      expect(put.status).toBe(201);
      // A signature of the amd64 manifest only (cosign signs each platform when asked).
      const signature = makeSignature(amd, 'a signature of amd64');
      await pushTestImage(wharf.url, 'team/tree', signature.root.digest, signature);

      const tree = await buildImageTree(client, 'team/tree', 'v1', { referrers: true });
      expect(tree.platforms).toBe(2);
      expect(tree.children.map((c) => [c.kind, c.label])).toEqual([
        ['image', 'linux/amd64'],
        ['image', 'linux/arm64'],
        ['attestation', undefined],
      ]);
      const amdNode = tree.children[0] as TreeNode;
      expect(amdNode.children.map((c) => c.kind)).toEqual(['config', 'layer', 'layer', 'referrer']);
      expect(amdNode.children[3]?.digest).toBe(signature.root.digest);
      // The signature's blobs are the signature's: neither the platform nor the index holds them.
      expect(amdNode.total).toBe(sumOf(image, 0));
      const attestationBytes = [...attestation.blobs.values()].reduce((sum, b) => sum + b.length, 0);
      expect(tree.total).toBe(sumOf(image, 0) + sumOf(image, 1) + attestationBytes);

      // --no-referrers: the same tree without the signature under amd64.
      const bare = await runWharf(['tree', '--json', '--no-referrers', `${wharf.host}/team/tree:v1`], {
        env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
        timeoutMs: 60_000,
      });
      expect(bare.stderr).toBe('');
      const drawn = (JSON.parse(bare.stdout) as { tree: TreeNode }).tree;
      expect(drawn.children[0]?.children.map((c) => c.kind)).toEqual(['config', 'layer', 'layer']);
    },
    timeout,
  );
});

describe('wharf config', () => {
  it(
    'refuses a config whose bytes are not its digest',
    async () => {
      const config = Buffer.from('{"architecture":"amd64"}');
      const digest = sha256Digest(config) as Digest;
      const registry = await startScriptedRegistry({
        '/v2/': (_req, res) => sendBytes(res, '{}', { 'Content-Type': 'application/json' }),
        [`/v2/team/cfg/blobs/${digest}`]: (_req, res) =>
          sendBytes(res, '{"architecture":"arm64"}', { 'Content-Type': 'application/octet-stream' }),
      });
      const scripted = new RegistryClient({ host: registry.host, url: registry.url, env: {} });
      try {
        const read = readSmallBlob(scripted, 'team/cfg', {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest,
          size: config.length,
        });
        await expect(read).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      } finally {
        await scripted.close();
        await registry.close();
      }
    },
    timeout,
  );
});

describe('--certs-dir', () => {
  it(
    'wins over WHARF_CERTS_D',
    async () => {
      const tlsDir = join(work, 'tls');
      await mkdir(tlsDir);
      const files = await writeTestCertificate(tlsDir, 'registry');
      const server = await startServer({
        dataDir: join(work, 'tls-data'),
        host: '127.0.0.1',
        port: 0,
        logLevel: 'silent',
        upstreams: [],
        tls: files,
      });
      try {
        const host = `127.0.0.1:${server.port}`;
        const certs = join(work, 'certs.d');
        await mkdir(join(certs, host), { recursive: true });
        await writeFile(join(certs, host, 'ca.crt'), await readFile(files.cert));
        const context = new ClientContext(
          { certsDir: certs },
          { WHARF_CERTS_D: join(work, 'empty-certs.d'), DOCKER_CONFIG: join(work, 'no-docker-config') },
        );
        try {
          // Trusted through --certs-dir: the registry answers (404, no such image), no TLS error.
          expect(await headManifest(await context.client(host), 'team/none', 'v1')).toBeUndefined();
        } finally {
          await context.close();
        }
      } finally {
        await server.close();
      }
    },
    timeout,
  );
});

describe('wharf tags and digest', () => {
  it(
    'tags: an unknown repository is an error, --json names the registry; digest: the digest pins',
    async () => {
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: ociManifest, layers: [] });
      const pinned = sha256Digest(manifest);
      const registry = await startScriptedRegistry({
        '/v2/': (_req, res) => sendBytes(res, '{}', { 'Content-Type': 'application/json' }),
        '/v2/team/app/tags/list': (_req, res) => sendJson(res, 200, { name: 'team/app', tags: ['v1', 'v2'] }),
        '/v2/team/gone/tags/list': (_req, res) => sendError(res, 404, 'NAME_UNKNOWN', 'repository name not known'),
        [`/v2/team/app/manifests/${pinned}`]: (_req, res) => sendManifest(res, manifest, ociManifest),
        // The tag moved on: a digest-pinned reference must not follow it.
        '/v2/team/app/manifests/v1': (_req, res) =>
          sendManifest(res, JSON.stringify({ schemaVersion: 2, mediaType: ociManifest, layers: [{}] }), ociManifest),
      });
      try {
        const env = { DOCKER_CONFIG: join(work, 'no-docker-config') };
        const gone = await runWharf(['tags', '--plain-http', `${registry.host}/team/gone`], { env, timeoutMs: 60_000 });
        expect(gone.code).toBe(1);
        expect(gone.stdout).toBe('');
        expect(gone.stderr).toBe(`error: NAME_UNKNOWN: ${registry.host}/team/gone: no such repository\n`);
        const json = await runWharf(['tags', '--plain-http', '--json', `${registry.host}/team/app`], {
          env,
          timeoutMs: 60_000,
        });
        expect(json.code).toBe(0);
        expect(JSON.parse(json.stdout)).toEqual({ repository: `${registry.host}/team/app`, tags: ['v1', 'v2'] });
        const digest = await runWharf(['digest', '--plain-http', `${registry.host}/team/app:v1@${pinned}`], {
          env,
          timeoutMs: 60_000,
        });
        expect(digest.stderr).toBe('');
        expect(digest.stdout).toBe(`${pinned}\n`);
      } finally {
        await registry.close();
      }
    },
    timeout,
  );
});
