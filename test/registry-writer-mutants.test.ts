/**
 * The registry writer's decisions, request by request (the transfer scope's mutants, 30 November):
 * a blob the target holds is asked for once (HEAD) and never sent; one another repository holds is
 * mounted (no bytes move); no mount is tried without `mountFrom`, nor from the target itself; a blob
 * of unknown digest goes in one session and its announced size is checked; a copy to `name@digest`
 * puts its manifest once and reports one `tagged` entry; a tag whose manifest was never written is
 * refused. Real parts: wharf in process as the target, behind a logging proxy that shows which
 * requests the writer made; a LocalStore as the source.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { RegistryImageWriter } from '../src/upstream/registry-image-writer.js';
import { startHoldingProxy, type HoldingProxyHandle } from './support/holding-proxy.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { importTestImages } from './support/layout-store.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const name = 'team/app' as RepoName;

let work: string;
let source: LocalStore;
let wharf: WharfHandle;
let proxy: HoldingProxyHandle;
let image: TestImage;
const clients: RegistryClient[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-writer-mutants-'));
  image = await makeImage({ seed: testSeed('writer mutants'), layers: 2, layerSize: 1024 });
  source = await LocalStore.open(join(work, 'source'));
  await importTestImages(source, name, [['v1' as Tag, image]]);
  wharf = await startWharf();
  proxy = await startHoldingProxy({ target: wharf.url });
  // The source image, once, in team/base: what the tests below find present or mount.
  await copyImages(source, writerTo('team/base' as RepoName), [{ from: { name, reference: 'v1' as Tag } }]);
}, 120_000);

afterAll(async () => {
  for (const client of clients) await client.close();
  source?.close();
  await proxy?.close();
  await wharf?.close();
  await rm(work, { recursive: true, force: true });
});

/** A writer whose requests go through the logging proxy. */
function writerTo(target: RepoName, options: { mountFrom?: string; tag?: Tag } = {}): RegistryImageWriter {
  const client = new RegistryClient({
    host: proxy.host,
    url: proxy.url,
    env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
  });
  clients.push(client);
  return new RegistryImageWriter(client, target, options);
}

/** The requests made since `from` (an index into the proxy's log), as `METHOD path`. */
function requestsSince(from: number): string[] {
  return proxy
    .exchanges()
    .slice(from)
    .map((e) => `${e.method} ${e.path}`);
}

const layer = (): Digest => image.images[0]?.layers[0]?.digest as Digest;

describe('hasBlob', () => {
  it('finds a blob the target holds with one HEAD, counts it once, and asks no more', async () => {
    const writer = writerTo('team/base' as RepoName);
    const start = proxy.exchanges().length;
    expect(await writer.hasBlob(layer())).toBe(true);
    expect(await writer.hasBlob(layer())).toBe(true);
    expect(writer.counts).toEqual({ blobsPresent: 1, blobsMounted: 0, manifestsPresent: 0 });
    expect(requestsSince(start)).toEqual([`HEAD /v2/team/base/blobs/${layer()}`]);
  });

  it('tries no mount without mountFrom: a HEAD, then the bytes are to be sent', async () => {
    const writer = writerTo('team/fresh' as RepoName);
    const start = proxy.exchanges().length;
    expect(await writer.hasBlob(layer())).toBe(false);
    expect(requestsSince(start)).toEqual([`HEAD /v2/team/fresh/blobs/${layer()}`]);
    expect(writer.counts).toEqual({ blobsPresent: 0, blobsMounted: 0, manifestsPresent: 0 });
  });

  it('tries no mount from the target repository itself', async () => {
    const writer = writerTo('team/self' as RepoName, { mountFrom: 'team/self' });
    const start = proxy.exchanges().length;
    expect(await writer.hasBlob(layer())).toBe(false);
    expect(requestsSince(start)).toEqual([`HEAD /v2/team/self/blobs/${layer()}`]);
  });

  it('mounts every blob from the repository that holds them: no bytes sent, and each asked for once', async () => {
    const writer = writerTo('team/mounted' as RepoName, { mountFrom: 'team/base' });
    const start = proxy.exchanges().length;
    const summary = await copyImages(source, writer, [{ from: { name, reference: 'v1' as Tag } }]);
    expect(summary.blobsSent).toBe(0);
    expect(writer.counts).toEqual({ blobsPresent: 0, blobsMounted: image.blobs.size, manifestsPresent: 0 });
    const sent = requestsSince(start);
    expect(sent.filter((r) => r.startsWith('PUT /v2/team/mounted/blobs/'))).toEqual([]);
    expect(sent.filter((r) => r.startsWith('POST /v2/team/mounted/blobs/uploads/?mount=')).sort()).toEqual(
      [...image.blobs.keys()].map((d) => `POST /v2/team/mounted/blobs/uploads/?mount=${d}&from=team%2Fbase`).sort(),
    );
    // A mounted blob is known: asking again makes no request and answers yes.
    const after = proxy.exchanges().length;
    expect(await writer.hasBlob(layer())).toBe(true);
    expect(requestsSince(after)).toEqual([]);
    expect(writer.tagged).toEqual([{ reference: 'v1', digest: image.root.digest }]);
  });
});

describe('writeUnnamedBlob', () => {
  it('sends a blob of unknown digest and returns what the registry computed', async () => {
    const writer = writerTo('team/unnamed' as RepoName);
    const bytes = Buffer.from('a blob whose digest the writer learns from the registry');
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    expect(await writer.writeUnnamedBlob(bytes.byteLength, Readable.from([bytes]))).toEqual({
      digest,
      size: bytes.byteLength,
      added: true,
    });
    const head = await fetch(`${wharf.url}/v2/team/unnamed/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    // Sent again by the same writer: the bytes go over the wire, but the blob is not new to it.
    expect(await writer.writeUnnamedBlob(bytes.byteLength, Readable.from([bytes]))).toMatchObject({ added: false });
  });

  it('refuses a blob whose size is not the one announced', async () => {
    const writer = writerTo('team/unnamed-short' as RepoName);
    const bytes = Buffer.from('nine byte');
    await expect(writer.writeUnnamedBlob(12, Readable.from([bytes]))).rejects.toMatchObject({
      code: 'SIZE_INVALID',
      message: 'a blob of 9 bytes where 12 were announced',
    });
  });
});

describe('commit', () => {
  it('puts the manifest once and reports one entry for a copy to name@digest', async () => {
    const writer = writerTo('team/by-digest' as RepoName);
    const start = proxy.exchanges().length;
    const digest = image.root.digest as Digest;
    await copyImages(source, writer, [
      { from: { name, reference: 'v1' as Tag }, to: { name: 'team/by-digest' as RepoName, reference: digest } },
    ]);
    expect(writer.tagged).toEqual([{ reference: digest, digest }]);
    expect(requestsSince(start).filter((r) => r.startsWith('PUT /v2/team/by-digest/manifests/'))).toEqual([
      `PUT /v2/team/by-digest/manifests/${digest}`,
    ]);
  });

  it('refuses a tag whose manifest this writer never wrote, and moves no tag', async () => {
    const writer = writerTo('team/untagged' as RepoName);
    const digest = image.root.digest as Digest;
    await writer.tag(name, 'v9' as Tag, digest);
    const start = proxy.exchanges().length;
    await expect(writer.commit()).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      message: `tag v9: manifest ${digest} was not written`,
    });
    expect(requestsSince(start)).toEqual([]);
    expect(writer.tagged).toEqual([]);
  });
});
