/**
 * Issue 10: a damaged bundle is refused with one line naming what is wrong, and
 * the store is left exactly as it was (every index row and every file under
 * blobs/ and tmp/ compared before and after). Each bundle is a good export
 * changed by hand: a flipped byte in a layer, a truncated tar, a manifest
 * naming a missing blob, a path escaping the layout, a symlink, a hard link,
 * a duplicate blob entry with different bytes.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { snapshotStore } from './support/store-snapshot.js';
import { readTar, writeTar, type TarEntry } from './support/tar-surgery.js';
import { startWharf } from './support/wharf.js';

const timeoutMs = 120_000;

describe('wharf import refuses damaged bundles and leaves the store as it was', () => {
  let work: string;
  let image: TestImage;
  let good: TarEntry[];
  let goodPath: string;
  let store: string;
  let layerPath: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-refusals-'));
    const source = await startWharf();
    try {
      image = await makeImage({
        seed: testSeed('import-refusals'),
        layers: 2,
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
      });
      await pushTestImage(source.url, 'team/app', 'v1', image);
      goodPath = join(work, 'good.tar');
      const exported = await runWharf(['export', 'team/app:v1', '-o', goodPath, '--data', source.dataDir, '--quiet']);
      expect(exported.stderr).toBe('');
    } finally {
      await source.close();
    }
    good = await readTar(goodPath);
    const layer = image.images[0]?.layers[0]?.digest ?? '';
    layerPath = `blobs/sha256/${layer.slice('sha256:'.length)}`;
    // The store is not empty: an earlier import of another image, so "unchanged" means something.
    store = join(work, 'store');
    const other = await makeImage({ seed: `${String(image.seed)}/other`, layers: 1 });
    const otherSource = await startWharf();
    try {
      await pushTestImage(otherSource.url, 'team/other', 'v1', other);
      const otherTar = join(work, 'other.tar');
      await runWharf(['export', 'team/other:v1', '-o', otherTar, '--data', otherSource.dataDir, '--quiet']);
      const first = await runWharf(['import', otherTar, '--data', store, '--quiet']);
      expect(first.code).toBe(0);
    } finally {
      await otherSource.close();
    }
  }, timeoutMs);

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  /** Imports `bundle` and expects one error line matching `why`, with the store unchanged. */
  async function expectRefused(bundle: string, why: RegExp): Promise<void> {
    const before = await snapshotStore(store);
    const result = await runWharf(['import', bundle, '--data', store, '--quiet'], { timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: [^\n]+\n$/);
    expect(result.stderr).toMatch(why);
    expect(await snapshotStore(store)).toEqual(before);
  }

  async function variant(name: string, change: (entries: TarEntry[]) => TarEntry[]): Promise<string> {
    const path = join(work, name);
    await writeTar(path, change(good.map((e) => ({ header: { ...e.header }, data: Buffer.from(e.data) }))));
    return path;
  }

  it('the good bundle imports (the control)', async () => {
    const copy = join(work, 'control-store');
    const result = await runWharf(['import', goodPath, '--data', copy, '--quiet']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('refuses a flipped byte in a layer', async () => {
    const bundle = await variant('flipped.tar', (entries) => {
      const layer = entries.find((e) => e.header.name === layerPath);
      if (layer === undefined) throw new Error('no layer entry');
      layer.data[100] = (layer.data[100] ?? 0) ^ 0xff;
      return entries;
    });
    await expectRefused(bundle, /DIGEST_INVALID: blobs\/sha256\/\w+: content does not match its digest/);
  });

  it('a second import writes nothing: blobs the store holds are read past, not hashed, so a flipped byte there is discarded', async () => {
    const again = join(work, 'again-store');
    const first = await runWharf(['import', goodPath, '--data', again, '--quiet']);
    expect(first.code).toBe(0);
    const before = await snapshotStore(again);
    // The layer is held already: its bytes in this bundle are never used, so damage there costs nothing.
    const bundle = await variant('held-flipped.tar', (entries) => {
      const layer = entries.find((e) => e.header.name === layerPath);
      if (layer === undefined) throw new Error('no layer entry');
      layer.data[100] = (layer.data[100] ?? 0) ^ 0xff;
      return entries;
    });
    const second = await runWharf(['import', bundle, '--data', again]);
    expect(second.stderr).not.toContain('error');
    expect(second.stdout).toMatch(/, 0 blobs written, /);
    expect(second.code).toBe(0);
    // The same files and rows; only the tag's updated_at moves (the operator stated it again).
    const after = await snapshotStore(again);
    const withoutTime = (rows: string[] | undefined): string[] =>
      (rows ?? []).map((row) => row.replace(/"updated_at":\d+/, ''));
    expect(after.files).toEqual(before.files);
    expect({ ...after.rows, tags: withoutTime(after.rows.tags) }).toEqual({
      ...before.rows,
      tags: withoutTime(before.rows.tags),
    });
  });

  it('refuses a truncated tar', async () => {
    const whole = await readFile(goodPath);
    const offset = whole.indexOf(Buffer.from(layerPath.slice(0, 99)));
    const bundle = join(work, 'truncated.tar');
    await writeFile(bundle, whole.subarray(0, offset + 512 + 1000));
    await expectRefused(bundle, /Unexpected end of data|truncated/);
  });

  it("imports the bundle gzip'd, and refuses a truncated gzip", async () => {
    const whole = gzipSync(await readFile(goodPath));
    const gz = join(work, 'good.tar.gz');
    await writeFile(gz, whole);
    const result = await runWharf(['import', gz, '--data', join(work, 'gz-store'), '--quiet']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const cut = join(work, 'cut.tar.gz');
    await writeFile(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
    await expectRefused(cut, /SIZE_INVALID: the archive ends .* \(truncated or unreadable: unexpected end of file\)/);
  });

  it('refuses a manifest naming a blob the bundle lacks', async () => {
    const bundle = await variant('missing.tar', (entries) => entries.filter((e) => e.header.name !== layerPath));
    await expectRefused(bundle, /MANIFEST_BLOB_UNKNOWN: .* names blob sha256:\w+, which is missing from the layout/);
  });

  it('refuses a path that escapes the layout', async () => {
    for (const name of ['../escape', 'blobs/../../escape', '/etc/escape']) {
      const bundle = await variant('escape.tar', (entries) => [
        { header: { name, type: 'file', size: 3, mode: 0o644 }, data: Buffer.from('bad') } as TarEntry,
        ...entries,
      ]);
      await expectRefused(bundle, /NAME_INVALID: entry ".*" escapes the layout/);
    }
  });

  it('refuses symlink and hard-link entries', async () => {
    for (const type of ['symlink', 'link'] as const) {
      const bundle = await variant(`${type}.tar`, (entries) => [
        ...entries.filter((e) => e.header.name !== 'index.json'),
        {
          header: { name: 'blobs/sha256/evil', type, linkname: '/etc/passwd', size: 0, mode: 0o777 },
          data: Buffer.alloc(0),
        } as TarEntry,
        ...entries.filter((e) => e.header.name === 'index.json'),
      ]);
      await expectRefused(bundle, new RegExp(`UNSUPPORTED: entry "blobs/sha256/evil" is a ${type}`));
    }
  });

  // Round 3 of the planted-bug audit (docs/mutation-testing.md): checks on what the layout says about
  // itself that no test changed: its version, and the sizes in its descriptors.
  it('refuses an oci-layout of another major version', async () => {
    const bundle = await variant('layout-v2.tar', (entries) => {
      const layout = entries.find((e) => e.header.name === 'oci-layout');
      if (layout === undefined) throw new Error('no oci-layout entry');
      layout.data = Buffer.from(JSON.stringify({ imageLayoutVersion: '2.0.0' }));
      return entries;
    });
    await expectRefused(bundle, /^error: UNSUPPORTED: oci-layout: unsupported imageLayoutVersion "2\.0\.0"\n$/);
  });

  it("refuses index.json naming its image with a size one byte more than the manifest's", async () => {
    const bundle = await variant('root-size.tar', (entries) => {
      patchJson(entries, 'index.json', (index: { manifests: { size: number }[] }) => {
        for (const d of index.manifests) d.size += 1;
      });
      return entries;
    });
    const root = image.root;
    await expectRefused(
      bundle,
      new RegExp(
        `^error: SIZE_INVALID: manifest ${root.digest}: ${root.size} bytes, its descriptor says ${root.size + 1}\n$`,
      ),
    );
  });

  it('refuses a manifest whose layer descriptor gives a size other than the blob in the layout', async () => {
    const platform = image.images[0];
    const layer = platform?.layers[0];
    if (platform === undefined || layer === undefined || image.index === undefined) throw new Error('no platform');
    const bundle = await variant('layer-size.tar', (entries) => {
      // The layer's descriptor says one byte more; the manifest, the index above it and index.json follow.
      const child = patchJson(entries, blobName(platform.manifest.digest), (m: { layers: { size: number }[] }) => {
        for (const l of m.layers) if (l.size === layer.size) l.size += 1;
      });
      const index = patchJson(entries, blobName(image.index?.digest ?? ''), (i: IndexJson) => {
        for (const d of i.manifests) if (d.digest === platform.manifest.digest) Object.assign(d, child);
      });
      patchJson(entries, 'index.json', (i: IndexJson) => {
        for (const d of i.manifests) Object.assign(d, index);
      });
      return entries;
    });
    await expectRefused(
      bundle,
      new RegExp(
        `^error: SIZE_INVALID: blob ${layer.digest}: ${layer.size} bytes in the layout, the manifest says ${layer.size + 1}\n$`,
      ),
    );
  });

  // Round 5 of the planted-bug audit: nesting is bounded (4 indexes deep), not only cycles.
  it('refuses indexes nested 5 deep', async () => {
    const root = image.index;
    if (root === undefined) throw new Error('no index');
    const bundle = await variant('nested.tar', (entries) => {
      let child = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: root.digest, size: root.size };
      for (let level = 0; level < 4; level++) {
        const data = Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: child.mediaType, manifests: [child], level }),
        );
        const digest = sha256Digest(data);
        entries.unshift({
          header: { name: blobName(digest), type: 'file', size: data.length, mode: 0o644 },
          data,
        } as TarEntry);
        child = { ...child, digest, size: data.length };
      }
      patchJson(entries, 'index.json', (i: IndexJson) => {
        for (const d of i.manifests) Object.assign(d, { digest: child.digest, size: child.size });
      });
      return entries;
    });
    await expectRefused(bundle, new RegExp(`^error: MANIFEST_INVALID: ${root.digest}: indexes nested too deep\n$`));
  });

  it('refuses a duplicate blob entry with different bytes', async () => {
    const bundle = await variant('duplicate.tar', (entries) => {
      const layer = entries.find((e) => e.header.name === layerPath);
      if (layer === undefined) throw new Error('no layer entry');
      const changed = Buffer.from(layer.data);
      changed[50] = (changed[50] ?? 0) ^ 0x01;
      const at = entries.indexOf(layer) + 1;
      return [...entries.slice(0, at), { header: { ...layer.header }, data: changed }, ...entries.slice(at)];
    });
    await expectRefused(bundle, /DIGEST_INVALID: duplicate blob entry blobs\/sha256\/\w+ with different bytes/);
  });
});

interface IndexJson {
  manifests: { digest: string; size: number }[];
}

function blobName(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

/**
 * Rewrites the JSON entry `name` with `change`; a blob is renamed to its new digest. Returns the
 * entry's new digest and size, for the descriptor that names it one level up.
 */
function patchJson<T>(entries: TarEntry[], name: string, change: (value: T) => void): { digest: string; size: number } {
  const entry = entries.find((e) => e.header.name === name);
  if (entry === undefined) throw new Error(`no entry ${name}`);
  const value = JSON.parse(entry.data.toString('utf8')) as T;
  change(value);
  entry.data = Buffer.from(JSON.stringify(value));
  const digest = sha256Digest(entry.data);
  if (name.startsWith('blobs/')) entry.header.name = blobName(digest);
  return { digest, size: entry.data.length };
}
