/**
 * planImage's refusals and its "each once" promises (the transfer scope's mutants, 30 November): a
 * root, a referrer or a child the reader lacks is refused with its name in the message; a manifest
 * over the size bound or whose bytes do not hash to its digest is refused; referrers come only when
 * asked, from a reader that can list them, referrers of referrers too, at most 1000; a child an
 * index lists twice and a blob listed twice are taken once; a layer with an empty `urls` list is an
 * ordinary layer. The reader is a table of manifests in memory: planImage reads only manifests, and
 * a table lets a test hand it what no store would keep (a manifest whose bytes lie about its digest).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../src/oci/descriptor.js';
import type { Digest } from '../src/oci/digest.js';
import type { ManifestContent } from '../src/oci/image-source.js';
import type { ImageReader } from '../src/oci/image-transfer.js';
import { maxManifestBytes } from '../src/oci/manifest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { planImage } from '../src/transfer/image-plan.js';

const name = 'team/plan' as RepoName;
const ref = { name, reference: 'v1' as Tag };
const imageType = 'application/vnd.oci.image.manifest.v1+json';
const indexType = 'application/vnd.oci.image.index.v1+json';
const layerType = 'application/vnd.oci.image.layer.v1.tar+gzip';

const sha256 = (bytes: Uint8Array | string): Digest =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

function blob(text: string, mediaType = layerType): Descriptor {
  return { mediaType, digest: sha256(text), size: Buffer.byteLength(text) };
}

function content(bytes: Buffer, mediaType: string): ManifestContent {
  return { mediaType, digest: sha256(bytes), size: bytes.byteLength, bytes };
}

function manifest(body: object, mediaType = imageType): ManifestContent {
  return content(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, ...body })), mediaType);
}

function image(seed: string, extra: object = {}): ManifestContent {
  return manifest({ config: blob(`config ${seed}`, 'application/vnd.oci.image.config.v1+json'), layers: [], ...extra });
}

function descriptorOf(m: ManifestContent, extra: object = {}): Descriptor {
  return { mediaType: m.mediaType, digest: m.digest, size: m.size, ...extra };
}

/** An artifact naming `subject` (a signature, an SBOM). */
function referrer(subject: ManifestContent, seed: string): ManifestContent {
  return image(seed, { subject: descriptorOf(subject) });
}

interface Table {
  /** The root, under tag v1. */
  root?: ManifestContent;
  /** Other manifests the reader holds, by digest. */
  held?: ManifestContent[];
  /** What listReferrers answers per subject; absent: the reader cannot list referrers. */
  referrers?: Map<Digest, Descriptor[]>;
}

function tableReader(table: Table): ImageReader & { listed: Digest[] } {
  const byDigest = new Map<string, ManifestContent>();
  for (const m of [...(table.root === undefined ? [] : [table.root]), ...(table.held ?? [])]) {
    byDigest.set(m.digest, m);
  }
  const listed: Digest[] = [];
  const reader: ImageReader & { listed: Digest[] } = {
    listed,
    getManifest: async (_name, reference) => (reference === 'v1' ? table.root : byDigest.get(reference)),
    openBlob: async () => undefined,
  };
  const { referrers } = table;
  if (referrers !== undefined) {
    reader.listReferrers = async (_name, subject) => {
      listed.push(subject);
      return referrers.get(subject) ?? [];
    };
  }
  return reader;
}

describe('planImage refuses what it cannot copy whole', () => {
  it('a root the reader does not have', async () => {
    await expect(planImage(tableReader({}), ref)).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      message: 'team/plan: no manifest for v1',
    });
  });

  it('a child of an index the reader does not have, naming it', async () => {
    const child = image('absent child');
    const root = manifest({ manifests: [descriptorOf(child)] }, indexType);
    await expect(planImage(tableReader({ root }), ref)).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      message: `team/plan: manifest ${child.digest} of the index is not available`,
      detail: { digest: child.digest },
    });
  });

  it('a referrer the listing names but the reader does not have, naming it', async () => {
    const root = image('signed');
    const signature = referrer(root, 'a signature that is gone');
    const reader = tableReader({ root, referrers: new Map([[root.digest, [descriptorOf(signature)]]]) });
    await expect(planImage(reader, ref, { referrers: true })).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      message: `team/plan: referrer ${signature.digest} is not available`,
      detail: { digest: signature.digest },
    });
  });

  it('a manifest whose bytes do not hash to its digest', async () => {
    const real = image('bytes');
    const claimed = sha256('some other manifest');
    const root = { ...real, digest: claimed };
    await expect(planImage(tableReader({ root }), ref)).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
      message: `${claimed}: manifest bytes hash to ${real.digest}`,
    });
  });

  it('a manifest over the size bound, and takes one of exactly the bound', async () => {
    const sized = (size: number): ManifestContent => {
      const json = JSON.stringify({ schemaVersion: 2, mediaType: imageType, config: blob('config sized'), layers: [] });
      // JSON allows whitespace after the value: the padding changes the size and the digest, not the meaning.
      return content(Buffer.from(json.padEnd(size, ' ')), imageType);
    };
    const atBound = sized(maxManifestBytes);
    const plan = await planImage(tableReader({ root: atBound }), ref);
    expect(plan.manifests.map((m) => m.digest)).toEqual([atBound.digest]);
    const over = sized(maxManifestBytes + 1);
    await expect(planImage(tableReader({ root: over }), ref)).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
      message: `${over.digest}: manifest exceeds ${maxManifestBytes} bytes`,
    });
  });
});

describe('planImage takes each manifest and blob once', () => {
  it('a child an index lists twice, and a blob two manifests share or one lists twice', async () => {
    const shared = blob('shared layer');
    const amd64 = image('amd64', { layers: [shared, blob('amd64 layer'), shared] });
    const arm64 = image('arm64', { layers: [shared] });
    const root = manifest(
      {
        manifests: [
          descriptorOf(amd64, { platform: { os: 'linux', architecture: 'amd64' } }),
          descriptorOf(arm64, { platform: { os: 'linux', architecture: 'arm64' } }),
          descriptorOf(amd64, { platform: { os: 'linux', architecture: 'amd64', variant: 'v2' } }),
        ],
      },
      indexType,
    );
    const plan = await planImage(tableReader({ root, held: [amd64, arm64] }), ref);
    expect(plan.manifests.map((m) => m.digest)).toEqual([amd64.digest, arm64.digest, root.digest]);
    expect(plan.blobs.map((b) => b.digest)).toEqual([
      sha256('config amd64'),
      shared.digest,
      sha256('amd64 layer'),
      sha256('config arm64'),
    ]);
  });

  it('a layer with an empty urls list is an ordinary layer, taken', async () => {
    const layer = { ...blob('a layer with no urls'), urls: [] };
    const root = image('empty urls', { layers: [layer] });
    const plan = await planImage(tableReader({ root }), ref);
    expect(plan.blobs.map((b) => b.digest)).toEqual([sha256('config empty urls'), layer.digest]);
  });
});

describe('planImage and referrers', () => {
  it('takes none, and asks for none, when the copy does not ask for them', async () => {
    const root = image('not asked');
    const signature = referrer(root, 'signature not asked for');
    const reader = tableReader({
      root,
      held: [signature],
      referrers: new Map([[root.digest, [descriptorOf(signature)]]]),
    });
    const plan = await planImage(reader, ref);
    expect(plan.manifests.map((m) => m.digest)).toEqual([root.digest]);
    expect(plan.referrers).toBe(0);
    expect(reader.listed).toEqual([]);
  });

  it('takes none from a reader that cannot list them', async () => {
    const root = image('unlistable');
    const plan = await planImage(tableReader({ root }), ref, { referrers: true });
    expect(plan.manifests.map((m) => m.digest)).toEqual([root.digest]);
    expect(plan.referrers).toBe(0);
  });

  it('follows referrers of referrers, each after its subject', async () => {
    const root = image('chain');
    const signature = referrer(root, 'signature of the image');
    const countersign = referrer(signature, 'signature of the signature');
    const reader = tableReader({
      root,
      held: [signature, countersign],
      referrers: new Map([
        [root.digest, [descriptorOf(signature)]],
        [signature.digest, [descriptorOf(countersign)]],
      ]),
    });
    const plan = await planImage(reader, ref, { referrers: true });
    expect(plan.manifests.map((m) => m.digest)).toEqual([root.digest, signature.digest, countersign.digest]);
    expect(plan.referrers).toBe(2);
    expect(reader.listed).toEqual([root.digest, signature.digest, countersign.digest]);
  });

  it('takes 1000 referrers, and refuses 1001', async () => {
    const root = image('popular');
    const fanOut = (count: number): ImageReader => {
      const held = Array.from({ length: count }, (_, i) => referrer(root, `referrer ${i}`));
      return tableReader({
        root,
        held,
        referrers: new Map([[root.digest, held.map((m) => descriptorOf(m))]]),
      });
    };
    const plan = await planImage(fanOut(1000), ref, { referrers: true });
    expect(plan.referrers).toBe(1000);
    expect(plan.manifests).toHaveLength(1001);
    await expect(planImage(fanOut(1001), ref, { referrers: true })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: 'team/plan: more than 1000 referrer manifests',
    });
  });
});
