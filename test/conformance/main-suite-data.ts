/**
 * @module test/conformance/main-suite-data
 * Port of the main-branch conformance suite's data generator (`conformance/testdata.go` and
 * `GenerateData` in `run.go`): images, indexes, artifacts, referrers and the other data sets,
 * serialised like Go's `json.Marshal` of the image-spec types (field order, omitempty, sorted
 * map keys). Randomness comes from a SeededRandom instead of crypto/rand. Quirks of the
 * original are kept (e.g. every "uncompressed" layer digest is the digest of zero bytes).
 */
import { gzipSync } from 'node:zlib';
import type { SeededRandom } from './seeded-random.js';
import { digestOf, type DigestAlgorithm } from './target.js';

export const MT = {
  exampleConf1: 'application/vnd.example.oci.conformance.v1',
  exampleConf2: 'application/vnd.example.oci.conformance.v2',
  octetStream: 'application/octet-stream',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociImage: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerPre: 'application/vnd.oci.image.layer.v1.',
  ociLayerGz: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerNd: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNdGz: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociEmptyJSON: 'application/vnd.oci.empty.v1+json',
} as const;

export interface Platform {
  architecture: string;
  os: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: Buffer;
  platform?: Platform;
  artifactType?: string;
}

/** One data set (`testData`): what to push, and what the registry must then return. */
export class TestData {
  readonly tags = new Map<string, string>();
  readonly tagPushed = new Set<string>();
  readonly desc = new Map<string, Descriptor>();
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, Buffer>();
  /** Push order; children before parents. */
  readonly manOrder: string[] = [];
  readonly referrers = new Map<string, Descriptor[]>();
  /** pullOpts SkipPullTest */
  readonly skipPull = new Set<string>();
  /** pushOpts ExpectBadDigest */
  readonly expectBadDigest = new Set<string>();
  /** pushOpts TagParam */
  readonly tagParam = new Set<string>();

  constructor(
    readonly name: string,
    private readonly random: SeededRandom,
  ) {}

  private descriptorOf(digest: string): Descriptor {
    const d = this.desc.get(digest);
    if (d === undefined) throw new Error(`${this.name}: no descriptor for ${digest}`);
    return d;
  }

  addBlob(bytes: Buffer, opts: GenOpts = {}): string {
    const o = { algo: 'sha256' as DigestAlgorithm, descriptorMediaType: MT.octetStream, ...opts };
    const digest = digestOf(bytes, o.algo);
    this.blobs.set(digest, bytes);
    this.desc.set(digest, withData({ mediaType: o.descriptorMediaType, digest, size: bytes.length }, o.setData, bytes));
    return digest;
  }

  genBlob(opts: GenOpts = {}): { digest: string; bytes: Buffer } {
    const o = { blobSize: 2048, ...opts };
    const bytes = this.random.bytes(o.blobSize);
    return { digest: this.addBlob(bytes, opts), bytes };
  }

  /** A tar layer with one text file; returns the compressed and "uncompressed" digests. */
  genLayer(fileNum: number, opts: GenOpts = {}): { compressed: string; uncompressed: string } {
    const o = { comp: 'gzip' as Compression, algo: 'sha256' as DigestAlgorithm, ...opts };
    const file = `Conformance test file contents for file number ${fileNum}.\nTodays lucky number is ${this.random.int63()}\n`;
    const tar = tarOneFile(`./conformance-${fileNum}.txt`, Buffer.from(file));
    const body = o.comp === 'gzip' ? gzipSync(tar) : tar;
    const mediaType = o.comp === 'gzip' ? MT.ociLayerGz : MT.ociLayer;
    // as in testdata.go: the uncompressed buffer is never written, so this is the empty digest
    const bodyUncomp = Buffer.alloc(0);
    const compressed = digestOf(body, o.algo);
    const uncompressed = digestOf(bodyUncomp, o.algo);
    this.blobs.set(compressed, body);
    this.desc.set(compressed, withData({ mediaType, digest: compressed, size: body.length }, o.setData, body));
    this.desc.set(
      uncompressed,
      withData({ mediaType: MT.ociLayer, digest: uncompressed, size: 0 }, o.setData, bodyUncomp),
    );
    return { compressed, uncompressed };
  }

  genConfig(platform: Platform, layers: string[], opts: GenOpts = {}): string {
    const o = { algo: 'sha256' as DigestAlgorithm, configMediaType: MT.ociConfig, ...opts };
    const config: Record<string, unknown> = {
      author: 'OCI Conformance Test',
      architecture: platform.architecture,
      os: platform.os,
      config: {},
      rootfs: { type: 'layers', diff_ids: layers },
    };
    const body = Buffer.from(JSON.stringify(o.extraField === true ? this.addJsonField(config) : config));
    const digest = digestOf(body, o.algo);
    this.blobs.set(digest, body);
    this.desc.set(digest, withData({ mediaType: o.configMediaType, digest, size: body.length }, o.setData, body));
    return digest;
  }

  genManifest(config: Descriptor, layers: Descriptor[], opts: GenOpts = {}): string {
    const o = { algo: 'sha256' as DigestAlgorithm, ...opts };
    let annotations = o.annotations;
    if (o.annotationUniq === true) {
      annotations = { ...(annotations ?? {}), [`org.example.${this.random.text()}`]: this.random.text() };
    }
    const manifest: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.ociImage };
    if (o.artifactType !== undefined) manifest['artifactType'] = o.artifactType;
    manifest['config'] = descriptorJson(config);
    manifest['layers'] = layers.map(descriptorJson);
    if (o.subject !== undefined) manifest['subject'] = descriptorJson(o.subject);
    if (annotations !== undefined && Object.keys(annotations).length > 0)
      manifest['annotations'] = sortKeys(annotations);
    const body = Buffer.from(JSON.stringify(o.extraField === true ? this.addJsonField(manifest) : manifest));
    const digest = digestOf(body, o.algo);
    this.manifests.set(digest, body);
    this.manOrder.push(digest);
    this.desc.set(digest, withData({ mediaType: MT.ociImage, digest, size: body.length }, o.setData, body));
    if (o.subject !== undefined) {
      const list = this.referrers.get(o.subject.digest) ?? [];
      list.push({
        mediaType: MT.ociImage,
        artifactType: o.artifactType ?? config.mediaType,
        digest,
        size: body.length,
        ...(annotations !== undefined ? { annotations } : {}),
      });
      this.referrers.set(o.subject.digest, list);
    }
    if (o.tag !== undefined) this.tags.set(o.tag, digest);
    return digest;
  }

  /** An image with `layerCount` layers (2 by default) and a config. */
  genManifestFull(opts: GenOpts = {}): string {
    const o = { layerCount: 2, platform: { os: 'linux', architecture: 'amd64' }, ...opts };
    const compressed: string[] = [];
    const uncompressed: string[] = [];
    for (let l = 0; l < o.layerCount; l++) {
      if (o.layerMediaType === undefined || o.layerMediaType.startsWith(MT.ociLayerPre)) {
        const layer = this.genLayer(l, opts);
        compressed.push(layer.compressed);
        uncompressed.push(layer.uncompressed);
      } else {
        const lOpts: GenOpts = { descriptorMediaType: o.layerMediaType, ...opts };
        const digest = o.layerBytes !== undefined ? this.addBlob(o.layerBytes, lOpts) : this.genBlob(lOpts).digest;
        compressed.push(digest);
        uncompressed.push(digest);
      }
    }
    let configDigest: string;
    if (o.configMediaType === undefined || o.configMediaType === MT.ociConfig) {
      configDigest = this.genConfig(o.platform, uncompressed, opts);
    } else {
      configDigest = this.addBlob(o.configBytes ?? Buffer.alloc(0), {
        descriptorMediaType: o.configMediaType,
        ...opts,
      });
    }
    return this.genManifest(
      this.descriptorOf(configDigest),
      compressed.map((d) => this.descriptorOf(d)),
      opts,
    );
  }

  genIndex(platforms: Array<Platform | undefined>, manifests: string[], opts: GenOpts = {}): string {
    const o = { algo: 'sha256' as DigestAlgorithm, ...opts };
    let annotations = o.annotations;
    if (o.annotationUniq === true) {
      annotations = { ...(annotations ?? {}), [`org.example.${this.random.text()}`]: this.random.text() };
    }
    const entries = manifests.map((digest, i) => {
      const d: Descriptor = { ...this.descriptorOf(digest) };
      const platform = platforms[i];
      if (platform !== undefined) d.platform = platform;
      else delete d.platform;
      return d;
    });
    const index: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.ociIndex };
    if (o.artifactType !== undefined) index['artifactType'] = o.artifactType;
    index['manifests'] = entries.map(descriptorJson);
    if (o.subject !== undefined) index['subject'] = descriptorJson(o.subject);
    if (annotations !== undefined && Object.keys(annotations).length > 0) index['annotations'] = sortKeys(annotations);
    const body = Buffer.from(JSON.stringify(o.extraField === true ? this.addJsonField(index) : index));
    const digest = digestOf(body, o.algo);
    this.manifests.set(digest, body);
    this.manOrder.push(digest);
    this.desc.set(digest, withData({ mediaType: MT.ociIndex, digest, size: body.length }, o.setData, body));
    if (o.subject !== undefined) {
      const list = this.referrers.get(o.subject.digest) ?? [];
      list.push({
        mediaType: MT.ociIndex,
        ...(o.artifactType !== undefined ? { artifactType: o.artifactType } : {}),
        digest,
        size: body.length,
        ...(annotations !== undefined ? { annotations } : {}),
      });
      this.referrers.set(o.subject.digest, list);
    }
    if (o.tag !== undefined) this.tags.set(o.tag, digest);
    return digest;
  }

  /** An index of images, one per platform (amd64 and arm64 by default). */
  genIndexFull(opts: GenOpts = {}): string {
    const platforms = opts.platforms ?? [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ];
    const images = platforms.map((platform) => this.genManifestFull({ platform, ...opts }));
    return this.genIndex(platforms, images, opts);
  }

  /** `genAddJSONFields`: one extra top-level string field named `org.<random>`. */
  private addJsonField(value: Record<string, unknown>): Record<string, unknown> {
    return { ...value, [`org.${this.random.text()}`]: this.random.text() };
  }

  descriptor(digest: string): Descriptor {
    return this.descriptorOf(digest);
  }
}

export type Compression = 'gzip' | 'none';

export interface GenOpts {
  algo?: DigestAlgorithm;
  annotations?: Record<string, string>;
  annotationUniq?: boolean;
  artifactType?: string;
  blobSize?: number;
  comp?: Compression;
  configBytes?: Buffer;
  configMediaType?: string;
  descriptorMediaType?: string;
  extraField?: boolean;
  layerBytes?: Buffer;
  layerCount?: number;
  layerMediaType?: string;
  platform?: Platform;
  platforms?: Platform[];
  setData?: boolean;
  subject?: Descriptor;
  tag?: string;
}

export interface DataSet {
  /** The suite's tdName, used as the describe name. */
  name: string;
  td: TestData;
}

/** `GenerateData`: every data set in the suite's order, with the default (all enabled) config. */
export function generateDataSets(random: SeededRandom, options: { tagParam: boolean; sparse?: boolean }): DataSet[] {
  const sets: DataSet[] = [];
  const add = (name: string, title: string): TestData => {
    const td = new TestData(title, random);
    sets.push({ name, td });
    return td;
  };
  const twoPlatforms = (): Platform[] => [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
  ];
  const hello = { 'org.opencontainers.conformance': 'hello conformance test' };
  const emptyJSON = (): Buffer => Buffer.from('{}');

  add('image', 'Image').genManifestFull({ tag: 'image' });
  add('image-uncompressed', 'Image Uncompressed').genManifestFull({ tag: 'image-uncompressed', comp: 'none' });

  const large: Record<string, string> = {};
  for (let i = 0; i < 390; i++) large[`large-annotation-${i}`] = 'A'.repeat(10_000);
  add('large-manifest', 'Image with Large Manifest').genManifestFull({ tag: 'large-manifest', annotations: large });

  add('index', 'Index').genIndexFull({ tag: 'index', platforms: twoPlatforms() });

  const nested = add('nested-index', 'Nested Index');
  const dig1 = nested.genIndexFull({ platforms: twoPlatforms() });
  const dig2 = nested.genIndexFull({ platforms: twoPlatforms() });
  nested.genIndex([undefined, undefined], [dig1, dig2], { tag: 'index-of-index' });

  add('empty-index', 'Empty Index').genIndexFull({ tag: 'index', platforms: [] });

  add('artifact', 'Artifact').genManifestFull({
    tag: 'artifact',
    artifactType: MT.exampleConf1,
    configMediaType: MT.ociEmptyJSON,
    configBytes: emptyJSON(),
    layerCount: 1,
    layerMediaType: MT.exampleConf1,
  });

  add('artifact-index', 'Artifact Index').genIndexFull({
    tag: 'artifact-index',
    platforms: twoPlatforms(),
    artifactType: MT.exampleConf1,
    configMediaType: MT.ociEmptyJSON,
    configBytes: emptyJSON(),
    layerCount: 1,
    layerMediaType: MT.exampleConf1,
  });

  add('artifact-without-layers', 'Artifact without Layers').genManifestFull({
    tag: 'artifact-without-layers',
    artifactType: MT.exampleConf1,
    configMediaType: MT.ociEmptyJSON,
    configBytes: emptyJSON(),
    layerCount: 1,
    layerBytes: emptyJSON(),
    layerMediaType: MT.ociEmptyJSON,
  });

  const withSubject = add('artifacts-with-subject', 'Artifacts with Subject');
  const subjectImage = withSubject.descriptor(withSubject.genManifestFull({ tag: 'image' }));
  withSubject.genManifestFull({ subject: subjectImage });
  for (const [artifactType, layerMediaType, tag] of [
    [MT.exampleConf1, MT.exampleConf1, 'tagged-artifact1'],
    [MT.exampleConf2, MT.octetStream, 'tagged-artifact2'],
  ] as const) {
    withSubject.genManifestFull({
      artifactType,
      annotations: { ...hello },
      annotationUniq: true,
      configMediaType: MT.ociEmptyJSON,
      configBytes: emptyJSON(),
      layerCount: 1,
      layerMediaType,
      subject: subjectImage,
      tag,
    });
  }

  const indexWithSubject = add('index-with-subject', 'Index with Subject');
  const subjectIndex = indexWithSubject.descriptor(indexWithSubject.genIndexFull({ tag: 'index' }));
  indexWithSubject.genIndexFull({
    artifactType: MT.exampleConf1,
    annotations: { ...hello },
    annotationUniq: true,
    configMediaType: MT.ociEmptyJSON,
    configBytes: emptyJSON(),
    layerCount: 1,
    layerMediaType: MT.exampleConf1,
    subject: subjectIndex,
    tag: 'tagged-artifact',
  });

  add('missing-subject', 'Missing Subject').genManifestFull({
    artifactType: MT.exampleConf1,
    annotations: { ...hello },
    annotationUniq: true,
    configMediaType: MT.ociEmptyJSON,
    configBytes: emptyJSON(),
    layerCount: 1,
    layerMediaType: MT.exampleConf1,
    subject: { mediaType: MT.ociImage, size: 123, digest: digestOf('missing content') },
    tag: 'tagged-artifact',
  });

  add('data-field', 'Data Field').genManifestFull({ tag: 'data-field', setData: true });

  // layers 0 and 1 are non-distributable and never pushed; only layer 2 and the config are blobs
  const nd = add('non-distributable-layers', 'Non-distributable Layers');
  const confDigests: string[] = [digestOf(random.bytes(256))];
  const ndDigest0 = digestOf(random.bytes(256));
  const ndDigest1 = digestOf(random.bytes(256));
  confDigests.push(ndDigest1);
  const normal = nd.genLayer(1);
  confDigests.push(normal.uncompressed);
  const ndLayers: Descriptor[] = [
    {
      mediaType: MT.ociLayerNdGz,
      digest: ndDigest0,
      size: 123456,
      urls: [`https://store.example.com/blobs/sha256/${ndDigest0.slice(7)}`],
    },
    {
      mediaType: MT.ociLayerNd,
      digest: ndDigest1,
      size: 12345,
      urls: [`https://store.example.com/blobs/sha256/${ndDigest1.slice(7)}`],
    },
    nd.descriptor(normal.compressed),
  ];
  const ndConfig = nd.genConfig({ os: 'linux', architecture: 'amd64' }, confDigests);
  nd.genManifest(nd.descriptor(ndConfig), ndLayers, { tag: 'non-distributable-image' });

  add('custom-fields', 'Custom Fields').genIndexFull({
    tag: 'custom-fields',
    platforms: twoPlatforms(),
    extraField: true,
  });

  add('no-layers', 'No Layers').genManifestFull({ tag: 'no-layers', layerCount: 0 });

  if (options.sparse === true) {
    // OCI_DATA_SPARSE (off by default upstream): an image whose first layer is never pushed, and an
    // index naming an image that exists and a random digest that was never pushed.
    const sparse = add('sparse', 'Sparse Manifests');
    sparse.genManifestFull({ tag: 'sparse-image' });
    const firstLayer = [...sparse.blobs.keys()].find((digest) =>
      (sparse.desc.get(digest)?.mediaType ?? '').startsWith(MT.ociLayerPre),
    );
    if (firstLayer !== undefined) {
      sparse.blobs.delete(firstLayer);
      sparse.desc.delete(firstLayer);
    }
    const imagePlatform = { os: 'linux', architecture: 'amd64' };
    const image = sparse.genManifestFull({ platform: imagePlatform });
    const absent = digestOf(random.bytes(1024));
    sparse.desc.set(absent, { mediaType: MT.ociImage, digest: absent, size: 1024 });
    sparse.genIndex([imagePlatform, { os: 'linux', architecture: 'arm64' }], [image, absent], { tag: 'sparse-index' });
  }

  // non-canonical digests need tag parameters to push tags, so this set is by digest only
  add('sha512', 'Digest Algorithm sha512').genIndexFull({ algo: 'sha512' });

  if (options.tagParam) {
    for (const algo of ['sha256', 'sha512'] as const) {
      const name = `tag-param-${algo}`;
      const td = add(name, algo === 'sha256' ? 'Tag Param' : 'Tag Param sha512');
      td.genIndexFull({ tag: name, algo }); // the top-level index ends up with two tags
      td.manOrder.forEach((digest, i) => {
        td.tags.set(`${name}-${i}`, digest);
        td.tagParam.add(digest);
      });
    }
  }

  const bad = add('bad-digest-image', 'Bad Digest Image');
  const badDigest = bad.genManifestFull();
  bad.skipPull.add(badDigest);
  bad.expectBadDigest.add(badDigest);
  // trailing whitespace makes the digest mismatch
  const badBody = bad.manifests.get(badDigest) ?? Buffer.alloc(0);
  bad.manifests.set(badDigest, Buffer.concat([badBody, Buffer.from('  ')]));

  return sets;
}

/** image-spec Descriptor JSON: Go field order, omitempty fields left out. */
function descriptorJson(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls !== undefined && d.urls.length > 0) out['urls'] = d.urls;
  if (d.annotations !== undefined && Object.keys(d.annotations).length > 0)
    out['annotations'] = sortKeys(d.annotations);
  if (d.data !== undefined && d.data.length > 0) out['data'] = d.data.toString('base64');
  if (d.platform !== undefined) out['platform'] = { architecture: d.platform.architecture, os: d.platform.os };
  if (d.artifactType !== undefined && d.artifactType !== '') out['artifactType'] = d.artifactType;
  return out;
}

function withData(d: Descriptor, setData: boolean | undefined, bytes: Buffer): Descriptor {
  return setData === true ? { ...d, data: bytes } : d;
}

/** Go marshals map keys in sorted order. */
function sortKeys(map: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(map).sort()) out[key] = map[key] ?? '';
  return out;
}

/** A ustar archive holding one regular file (mode 0644, mtime 0), closed by two zero blocks. */
function tarOneFile(name: string, content: Buffer): Buffer {
  const headerBlock = Buffer.alloc(512);
  const put = (offset: number, length: number, value: string): void => {
    headerBlock.write(value, offset, Math.min(length, Buffer.byteLength(value)), 'ascii');
  };
  const octal = (value: number, length: number): string => value.toString(8).padStart(length - 1, '0') + '\0';
  put(0, 100, name);
  put(100, 8, octal(0o644, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(content.length, 12));
  put(136, 12, octal(0, 12));
  put(148, 8, '        ');
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const byte of headerBlock) sum += byte;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([headerBlock, content, padding, Buffer.alloc(1024)]);
}
