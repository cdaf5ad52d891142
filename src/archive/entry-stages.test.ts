/**
 * readSmall and collectManifest (entry-stages.ts): the cap's refusal, and which blobs are kept as
 * manifests (at most 4 MiB declared, starting with '{', parsing as an OCI/docker manifest or index,
 * never schema1). The archive-import Stryker scope's survivors (docs/mutation-testing.md).
 */
import { describe, expect, it } from 'vitest';
import { maxManifestBytes } from '../oci/manifest.js';
import { collectManifest, readSmall } from './entry-stages.js';

async function* chunks(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part) : part;
}

const manifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 2 },
  layers: [],
});

async function kept(size: number, ...parts: (string | Uint8Array)[]): Promise<{ passed: string; kept: string[] }> {
  const copies: string[] = [];
  const passed: Buffer[] = [];
  for await (const chunk of collectManifest(chunks(...parts), size, (bytes) =>
    copies.push(Buffer.from(bytes).toString()),
  ))
    passed.push(Buffer.from(chunk));
  return { passed: Buffer.concat(passed).toString(), kept: copies };
}

describe('readSmall', () => {
  it('reads up to the cap, and refuses past it naming the file and the cap', async () => {
    expect(Buffer.from(await readSmall(chunks('ab', 'cd'), 4, 'index.json')).toString()).toBe('abcd');
    await expect(readSmall(chunks('ab', 'cde'), 4, 'index.json')).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
      message: 'index.json exceeds 4 bytes',
    });
  });
});

describe('collectManifest', () => {
  it('keeps a manifest, passing every byte through', async () => {
    expect(await kept(manifest.length, manifest.slice(0, 10), manifest.slice(10))).toEqual({
      passed: manifest,
      kept: [manifest],
    });
  });

  it('a declared size of exactly 4 MiB may be a manifest; one byte more is never copied', async () => {
    expect((await kept(maxManifestBytes, manifest)).kept).toEqual([manifest]);
    expect(await kept(maxManifestBytes + 1, manifest)).toEqual({ passed: manifest, kept: [] });
  });

  it("a blob not starting with '{' is not copied, even JSON that parses (leading space)", async () => {
    expect(await kept(manifest.length + 1, ` ${manifest}`)).toEqual({ passed: ` ${manifest}`, kept: [] });
    expect(await kept(manifest.length + 1, ' ', manifest)).toEqual({ passed: ` ${manifest}`, kept: [] });
  });

  it("an empty first read does not decide: the first byte is '{'", async () => {
    expect((await kept(manifest.length, new Uint8Array(0), manifest)).kept).toEqual([manifest]);
  });

  it('a schema1 manifest, a config, an empty blob are not kept', async () => {
    const schema1 = JSON.stringify({ schemaVersion: 1, name: 'a', tag: 'b', fsLayers: [], signatures: [] });
    expect((await kept(schema1.length, schema1)).kept).toEqual([]);
    expect((await kept(13, '{"os":"linux"}')).kept).toEqual([]);
    expect(await kept(0)).toEqual({ passed: '', kept: [] });
  });
});
