/**
 * The client commands' answers, exactly, run as the real command line against wharf on loopback
 * (and a scripted registry for bytes no honest registry sends): `wharf delete` and `wharf blob`,
 * what `wharf copy` does to a target tag that points elsewhere and what it reports, a tree's
 * platforms and sizes, and a folder's file modes through push-dir and pull-dir.
 * Round 6 of the planted-bug audit (docs/mutation-testing.md): each of these passed every test before.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from './support/http.js';
import { makeImage, sha256Digest, type ManifestBlob, type TestImage } from './support/make-image.js';
import { makeSignature, manifestBlob, pushSignature } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { sendBytes, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeout = 120_000;
let work: string;
let wharf: WharfHandle;
let first: TestImage;
let second: TestImage;

async function wharfRun(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWharf(args, { timeoutMs: 60_000 });
}

async function wharfOk(args: string[]): Promise<string> {
  const result = await wharfRun(args);
  if (result.code !== 0) throw new Error(`wharf ${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
  return result.stdout;
}

async function manifestStatus(name: string, reference: string, accept: string): Promise<number> {
  const response = await call(wharf.url, `/v2/${name}/manifests/${reference}`, { headers: { Accept: accept } });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-client-objects-'));
  wharf = await startWharf();
  const platforms = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  first = await makeImage({ seed: 'client-objects/first', platforms });
  second = await makeImage({ seed: 'client-objects/second', platforms });
}, timeout);

afterAll(async () => {
  await wharf?.close();
  await rm(work, { recursive: true, force: true });
});

describe('wharf delete', () => {
  it(
    'deletes the tag it names and no other, and a second delete is one MANIFEST_UNKNOWN line, exit 1',
    async () => {
      await pushTestImage(wharf.url, 'team/del', 'v1', first);
      await pushTestImage(wharf.url, 'team/del', 'latest', second);
      const ref = `${wharf.host}/team/del:v1`;
      expect(await wharfOk(['delete', ref])).toBe(`deleted ${ref}\n`);
      expect(await manifestStatus('team/del', 'v1', first.root.mediaType)).toBe(404);
      // The tag a delete without a tag would name stays.
      expect(await manifestStatus('team/del', 'latest', second.root.mediaType)).toBe(200);

      const again = await wharfRun(['delete', ref]);
      expect(again.code).toBe(1);
      expect(again.stdout).toBe('');
      expect(again.stderr).toBe(`error: MANIFEST_UNKNOWN: ${ref}: no such manifest\n`);
    },
    timeout,
  );
});

describe('wharf blob', () => {
  let scripted: ScriptedRegistry | undefined;
  afterAll(async () => {
    await scripted?.close();
  });

  it(
    'head of a blob the repository lacks is one BLOB_UNKNOWN line and exit 1',
    async () => {
      await pushTestImage(wharf.url, 'team/blobs', 'v1', first);
      const missing = sha256Digest('not pushed anywhere');
      const result = await wharfRun(['blob', 'head', `${wharf.host}/team/blobs`, missing]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`error: BLOB_UNKNOWN: ${wharf.host}/team/blobs: no blob ${missing}\n`);
      const [digest, bytes] = [...first.blobs][0] ?? [];
      if (digest === undefined || bytes === undefined) throw new Error('no blob');
      expect(await wharfOk(['blob', 'head', `${wharf.host}/team/blobs`, digest])).toBe(`${digest} ${bytes.length}\n`);
    },
    timeout,
  );

  it(
    'get refuses bytes that do not hash to the digest, even with the right Content-Length, and leaves no file',
    async () => {
      const wanted = Buffer.from('the blob the digest names');
      const digest = sha256Digest(wanted);
      const wrong = Buffer.from(wanted.toString().replace('blob', 'BLOB'));
      scripted = await startScriptedRegistry({
        '/v2/': (_req, res) => sendBytes(res, '{}', { 'Content-Type': 'application/json' }),
        [`/v2/team/blobs/blobs/${digest}`]: (_req, res) =>
          sendBytes(res, wrong, { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest }),
      });
      const out = join(work, 'blob-out');
      await mkdir(out);
      const result = await wharfRun(['blob', 'get', '-o', join(out, 'blob'), `${scripted.host}/team/blobs`, digest]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: DIGEST_INVALID: /);
      expect(result.stderr.split('\n')).toHaveLength(2);
      expect(await readdir(out)).toEqual([]);
    },
    timeout,
  );
});

describe('wharf copy', () => {
  it(
    'moves a target tag that points at another image, and reports mounted blobs as already there',
    async () => {
      await pushTestImage(wharf.url, 'team/src', 'first', first);
      await pushTestImage(wharf.url, 'team/src', 'second', second);
      await wharfOk(['copy', '-q', `${wharf.host}/team/src:first`, `${wharf.host}/team/dst:v1`]);
      // The target tag exists (at first's digest): the copy must still move it to second's.
      await wharfOk(['copy', '-q', `${wharf.host}/team/src:second`, `${wharf.host}/team/dst:v1`]);
      expect((await wharfOk(['digest', `${wharf.host}/team/dst:v1`])).trim()).toBe(second.root.digest);
      const same = await wharfOk(['copy', `${wharf.host}/team/src:second`, `${wharf.host}/team/dst:v1`]);
      expect(same).toBe(`${wharf.host}/team/dst:v1 is already ${second.root.digest}: nothing to copy\n`);

      // Same registry, another repository: every blob is mounted, none sent, all counted as there.
      const text = await wharfOk(['copy', `${wharf.host}/team/src:first`, `${wharf.host}/team/mounted:v1`]);
      const n = first.blobs.size;
      expect(text.split('\n')[1]).toBe(`0 blobs sent (0 B), ${n} already there (${n} mounted)`);
    },
    timeout,
  );

  it(
    'copies one --platform as that image alone, not the index',
    async () => {
      await pushTestImage(wharf.url, 'team/src', 'first', first);
      const arm = first.images.find((i) => i.platform.architecture === 'arm64');
      if (arm === undefined) throw new Error('no arm64 image');
      const out = JSON.parse(
        await wharfOk([
          'copy',
          '--json',
          '--platform',
          'linux/arm64',
          `${wharf.host}/team/src:first`,
          `${wharf.host}/team/arm:v1`,
        ]),
      ) as { digest: string };
      expect(out.digest).toBe(arm.manifest.digest);
      expect((await wharfOk(['digest', `${wharf.host}/team/arm:v1`])).trim()).toBe(arm.manifest.digest);
    },
    timeout,
  );
});

describe('wharf copy --referrers', () => {
  it(
    'carries a signature of the signature too (referrers of referrers)',
    async () => {
      await pushTestImage(wharf.url, 'team/signed', 'v1', first);
      const signature = makeSignature(first.root, 'copy: signature');
      await pushSignature(wharf.url, 'team/signed', first.root, signature, { tagSchema: false });
      const countersign = makeSignature(signature.root, 'copy: signature of the signature');
      await pushSignature(wharf.url, 'team/signed', signature.root, countersign, { tagSchema: false });
      const out = JSON.parse(
        await wharfOk([
          'copy',
          '--json',
          '--referrers',
          `${wharf.host}/team/signed:v1`,
          `${wharf.host}/team/signed-copy:v1`,
        ]),
      ) as { referrers: number };
      expect(out.referrers).toBe(2);
      const listed = await call(wharf.url, `/v2/team/signed-copy/referrers/${signature.root.digest}`);
      const index = (await listed.json()) as { manifests: { digest: string }[] };
      expect(index.manifests.map((m) => m.digest)).toEqual([countersign.root.digest]);
    },
    timeout,
  );
});

interface JsonNode {
  kind: string;
  digest: string;
  size: number;
  total: number;
  platforms?: number;
  children: JsonNode[];
}

describe('wharf tree', () => {
  it(
    'counts platforms without the attestation entry, and leaves a referrer out of its subject size',
    async () => {
      // An index of first's two platforms and a buildkit attestation manifest (platform unknown/unknown).
      const statement = Buffer.from('{"_type":"https://in-toto.io/Statement/v0.1"}');
      const emptyConfig = Buffer.from('{}');
      const attestation = manifestBlob({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(emptyConfig), size: 2 },
        layers: [
          { mediaType: 'application/vnd.in-toto+json', digest: sha256Digest(statement), size: statement.length },
        ],
      });
      const amd = first.images.find((i) => i.platform.architecture === 'amd64');
      if (amd === undefined || first.index === undefined) throw new Error('no amd64 image');
      const index = manifestBlob({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          ...first.images.map((i) => ({
            mediaType: i.manifest.mediaType,
            digest: i.manifest.digest,
            size: i.manifest.size,
            platform: i.platform,
          })),
          {
            mediaType: attestation.mediaType,
            digest: attestation.digest,
            size: attestation.size,
            platform: { os: 'unknown', architecture: 'unknown' },
            annotations: {
              'vnd.docker.reference.type': 'attestation-manifest',
              'vnd.docker.reference.digest': amd.manifest.digest,
            },
          },
        ],
      });
      await pushTestImage(wharf.url, 'team/tree', 'first', first);
      const attested: TestImage = {
        ...first,
        blobs: new Map([
          [sha256Digest(statement), statement],
          [sha256Digest(emptyConfig), emptyConfig],
        ]),
        images: [],
        index: undefined,
        root: attestation,
      };
      await pushTestImage(wharf.url, 'team/tree', attestation.digest, attested);
      await putManifest('team/tree', 'v1', index);
      // A signature on the amd64 image, its one layer exactly 1000 bytes.
      const signature = makeSignature(amd.manifest, 'x'.repeat(1000));
      await pushSignature(wharf.url, 'team/tree', amd.manifest, signature, { tagSchema: false });

      const { tree } = JSON.parse(await wharfOk(['tree', '--json', `${wharf.host}/team/tree:v1`])) as {
        tree: JsonNode;
      };
      expect(tree.platforms).toBe(2);
      expect(tree.children.map((c) => c.kind)).toEqual(['image', 'image', 'attestation']);
      const sizeOf = (image: { config: { size: number }; layers: { size: number }[] }): number =>
        image.config.size + image.layers.reduce((sum, l) => sum + l.size, 0);
      const amdNode = tree.children.find((c) => c.digest === amd.manifest.digest);
      expect(amdNode?.children.map((c) => c.kind)).toEqual(['config', ...amd.layers.map(() => 'layer'), 'referrer']);
      expect(amdNode?.total).toBe(sizeOf(amd));
      // Each blob once overall (the attestation's included), the signature's not.
      const unique = new Map<string, number>();
      for (const image of first.images) for (const d of [image.config, ...image.layers]) unique.set(d.digest, d.size);
      unique.set(sha256Digest(statement), statement.length).set(sha256Digest(emptyConfig), 2);
      expect(tree.total).toBe([...unique.values()].reduce((a, b) => a + b, 0));

      const text = await wharfOk(['tree', `${wharf.host}/team/tree:v1`]);
      const head = text.split('\n')[0] ?? '';
      expect(head).toContain('  2 platforms, ');
      // 1000 bytes is 1.0 kB, as docker prints it.
      const signatureLayer = text
        .split('\n')
        .filter((l) => l.includes(`sha256:${sha256Digest('x'.repeat(1000)).slice(7, 19)}`));
      expect(signatureLayer).toHaveLength(1);
      expect(signatureLayer[0]).toMatch(/ {2}1\.0 kB( {2}cached)?$/);
    },
    timeout,
  );
});

describe('push-dir and pull-dir', () => {
  it(
    'keep each file mode, in octal in the manifest',
    async () => {
      const dir = join(work, 'modes');
      await mkdir(dir);
      await writeFile(join(dir, 'run.sh'), '#!/bin/sh\n');
      await chmod(join(dir, 'run.sh'), 0o750);
      await writeFile(join(dir, 'notes.txt'), 'read me\n');
      await chmod(join(dir, 'notes.txt'), 0o640);
      const ref = `${wharf.host}/team/modes:v1`;
      await wharfOk(['push-dir', dir, ref]);
      const manifest = JSON.parse(await wharfOk(['manifest', ref])) as {
        layers: { annotations: Record<string, string> }[];
      };
      expect(manifest.layers.map((l) => l.annotations['io.wharf.file.mode'])).toEqual(['0640', '0750']);
      const out = join(work, 'modes-out');
      await wharfOk(['pull-dir', ref, out]);
      expect((await stat(join(out, 'run.sh'))).mode & 0o777).toBe(0o750);
      expect((await stat(join(out, 'notes.txt'))).mode & 0o777).toBe(0o640);
    },
    timeout,
  );
});

async function putManifest(name: string, reference: string, manifest: ManifestBlob): Promise<void> {
  const response = await call(wharf.url, `/v2/${name}/manifests/${reference}`, {
    method: 'PUT',
    body: manifest.bytes,
    headers: { 'Content-Type': manifest.mediaType },
  });
  await response.arrayBuffer();
  if (response.status !== 201) throw new Error(`PUT manifest: ${response.status}`);
}
