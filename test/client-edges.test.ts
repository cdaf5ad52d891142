/**
 * The client commands at their edges (round 9c of planted bugs), run as the real command line
 * against wharf on loopback, and a scripted registry for what no honest registry sends: `wharf blob
 * get` of a blob sent without a length (nothing reaches stdout before the digest matched), `blob put`
 * from stdin with a digest the bytes do not hash to, `blob delete` of a blob that is not there, a
 * `--tar` folder whose symlink points at `..` itself, a config descriptor too large to show, and
 * `wharf tree`'s total for an index whose platforms share a layer (counted once).
 */
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from './support/http.js';
import { sha256Digest } from './support/make-image.js';
import { manifestBlob } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { sendBytes, sendManifest, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { composeImage, makeLayer } from './support/shared-layers.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeout = 120_000;
let work: string;
let wharf: WharfHandle;
let scripted: ScriptedRegistry | undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-client-edges-'));
  wharf = await startWharf();
}, timeout);

afterAll(async () => {
  await scripted?.close();
  await wharf?.close();
  await rm(work, { recursive: true, force: true });
});

/** `wharf <args>` with `input` on its stdin, as `… | wharf blob put` runs. */
function runWithInput(args: string[], input: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWharf(args, { input, timeoutMs: 60_000 });
}

async function blobStatus(name: string, digest: string): Promise<number> {
  const response = await call(wharf.url, `/v2/${name}/blobs/${digest}`, { method: 'HEAD' });
  await response.arrayBuffer();
  return response.status;
}

describe('wharf blob', () => {
  it(
    'get of a blob sent without Content-Length writes nothing to stdout when its bytes do not hash to the digest',
    async () => {
      const wanted = Buffer.from('the blob the digest names');
      const digest = sha256Digest(wanted);
      const wrong = Buffer.from('other bytes, sent chunked');
      scripted = await startScriptedRegistry({
        '/v2/': (_req, res) => sendBytes(res, '{}', { 'Content-Type': 'application/json' }),
        [`/v2/team/blobs/blobs/${digest}`]: (_req, res) => {
          // No Content-Length: node sends the body chunked.
          res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
          res.end(wrong);
        },
      });
      const result = await runWharf(['blob', 'get', `${scripted.host}/team/blobs`, digest], { timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: DIGEST_INVALID: /);
      expect(result.stdout).toBe('');
    },
    timeout,
  );

  it(
    'put from stdin with a digest the input does not hash to is refused, exit 1',
    async () => {
      const input = Buffer.from('the bytes on stdin');
      const claimed = sha256Digest('what the operator meant to send');
      const result = await runWithInput(['blob', 'put', `${wharf.host}/team/put`, claimed], input);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`error: DIGEST_INVALID: the input hashes to ${sha256Digest(input)}, not ${claimed}\n`);
      // Refused before the upload was closed: the registry kept nothing.
      expect(await blobStatus('team/put', sha256Digest(input))).toBe(404);
      // The same bytes with their own digest go in.
      const ok = await runWithInput(['blob', 'put', `${wharf.host}/team/put`, sha256Digest(input)], input);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toBe(`${sha256Digest(input)}\n`);
    },
    timeout,
  );

  it(
    'delete removes the blob, and a delete of a blob that is not there is one BLOB_UNKNOWN line, exit 1',
    async () => {
      const bytes = Buffer.from('a blob to delete');
      const digest = sha256Digest(bytes);
      const put = await runWithInput(['blob', 'put', `${wharf.host}/team/del`, digest], bytes);
      expect(put.code).toBe(0);
      const deleted = await runWharf(['blob', 'delete', `${wharf.host}/team/del`, digest], { timeoutMs: 60_000 });
      expect(deleted.code).toBe(0);
      expect(deleted.stdout).toBe(`deleted ${digest}\n`);
      expect(await blobStatus('team/del', digest)).toBe(404);

      const again = await runWharf(['blob', 'delete', `${wharf.host}/team/del`, digest], { timeoutMs: 60_000 });
      expect(again.code).toBe(1);
      expect(again.stdout).toBe('');
      expect(again.stderr).toBe(`error: BLOB_UNKNOWN: ${wharf.host}/team/del: no blob ${digest}\n`);
    },
    timeout,
  );
});

describe('pull-dir of a --tar folder', () => {
  it(
    'refuses a symlink that points at the folder above the target (`..` itself), leaving nothing behind',
    async () => {
      const dir = join(work, 'linked');
      await mkdir(dir);
      await writeFile(join(dir, 'a.txt'), 'a\n');
      await symlink('..', join(dir, 'up'));
      const ref = `${wharf.host}/team/linked:v1`;
      const pushed = await runWharf(['push-dir', '--tar', dir, ref], { timeoutMs: 60_000 });
      expect(pushed.code).toBe(0);
      const parent = join(work, 'pulls');
      await mkdir(parent);
      const result = await runWharf(['pull-dir', ref, join(parent, 'out')], { timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe('error: NAME_INVALID: symlink "up" → ".." points outside the target folder\n');
      expect(await readdir(parent)).toEqual([]);
    },
    timeout,
  );
});

describe('wharf config', () => {
  it(
    'refuses a config descriptor larger than 16 MiB without asking for the blob',
    async () => {
      const size = 16 * 1024 * 1024 + 1;
      const config = sha256Digest('a config said to be huge');
      const layer = sha256Digest('a layer');
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 7 }],
      });
      const huge = await startScriptedRegistry({
        '/v2/': (_req, res) => sendBytes(res, '{}', { 'Content-Type': 'application/json' }),
        '/v2/team/huge/manifests/v1': (_req, res) =>
          sendManifest(res, manifest, 'application/vnd.oci.image.manifest.v1+json'),
        [`/v2/team/huge/blobs/${config}`]: (_req, res) =>
          sendBytes(res, Buffer.alloc(size), { 'Content-Type': 'application/octet-stream' }),
      });
      try {
        const result = await runWharf(['config', `${huge.host}/team/huge:v1`], { timeoutMs: 60_000 });
        expect(result.code).toBe(1);
        expect(result.stderr).toBe(`error: SIZE_INVALID: ${config}: ${size} bytes is too large to show\n`);
        expect(huge.requestsTo(`/v2/team/huge/blobs/${config}`)).toEqual([]);
      } finally {
        await huge.close();
      }
    },
    timeout,
  );
});

describe('wharf tree', () => {
  it(
    "counts a layer two platforms share once in the index's total",
    async () => {
      const shared = await makeLayer('client-edges/shared', 3000);
      const own = await makeLayer('client-edges/amd-only', 500);
      const amd = composeImage('client-edges/amd', [shared, own]);
      const arm = composeImage('client-edges/arm', [shared]);
      await pushTestImage(wharf.url, 'team/shared', amd.root.digest, amd);
      await pushTestImage(wharf.url, 'team/shared', arm.root.digest, arm);
      const index = manifestBlob({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...descriptorOf(amd.root), platform: { os: 'linux', architecture: 'amd64' } },
          { ...descriptorOf(arm.root), platform: { os: 'linux', architecture: 'arm64' } },
        ],
      });
      const put = await call(wharf.url, '/v2/team/shared/manifests/v1', {
        method: 'PUT',
        body: index.bytes,
        headers: { 'Content-Type': index.mediaType },
      });
      await put.arrayBuffer();
      expect(put.status).toBe(201);
      const result = await runWharf(['tree', '--json', `${wharf.host}/team/shared:v1`], { timeoutMs: 60_000 });
      expect(result.code).toBe(0);
      const { tree } = JSON.parse(result.stdout) as { tree: { total: number; children: { total: number }[] } };
      const unique = new Map<string, number>();
      for (const image of [amd, arm]) for (const [digest, bytes] of image.blobs) unique.set(digest, bytes.length);
      expect(tree.children.map((c) => c.total)).toEqual([sizeOf(amd.blobs.values()), sizeOf(arm.blobs.values())]);
      expect(tree.total).toBe(sizeOf(unique.values()));
      expect(tree.total).toBeLessThan(sizeOf(amd.blobs.values()) + sizeOf(arm.blobs.values()));
    },
    timeout,
  );
});

function descriptorOf(manifest: { mediaType: string; digest: string; size: number }): {
  mediaType: string;
  digest: string;
  size: number;
} {
  return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
}

function sizeOf(values: Iterable<Buffer | number>): number {
  let total = 0;
  for (const value of values) total += typeof value === 'number' ? value : value.length;
  return total;
}
