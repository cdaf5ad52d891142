/**
 * ADR 0005: the tar an export writes has fixed header fields (no time, no owner), so two exports of
 * the same images hold the same entries. Blob entries come in the order their reads finish (the
 * engine sends four at once), so the bytes as a whole may differ in order: not compared. Round 8b
 * planted `mtime: new Date()`: two exports within the same second are still equal, so the headers
 * are read here.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importArchive } from '../src/archive/import-archive.js';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { OciLayoutWriter } from '../src/archive/oci-layout-writer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { makeImage, testSeed, writeOciLayout } from './support/make-image.js';

const name = 'registry.example.test/team/app' as RepoName;
const tag = 'v1' as Tag;

/** The whole tar an export of the image writes, as bytes. */
async function exportTar(source: LocalStore): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    out.on('end', resolve);
    out.on('error', reject);
  });
  await copyImages(source, new OciLayoutWriter(out), [{ from: { name, reference: tag } }]);
  // The writer leaves its output open (export ends its file, or stdout, itself).
  out.end();
  await ended;
  return Buffer.concat(chunks);
}

const byName = (a: HeaderFields, b: HeaderFields): number => a.name.localeCompare(b.name);

interface HeaderFields {
  name: string;
  mtime: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
}

async function headers(tar: Buffer): Promise<HeaderFields[]> {
  const found: HeaderFields[] = [];
  const parser = extract();
  Readable.from([tar]).pipe(parser);
  for await (const entry of parser) {
    const { header } = entry;
    found.push({ name: header.name, mtime: header.mtime?.getTime(), uid: header.uid, gid: header.gid });
    entry.resume();
  }
  return found;
}

describe('export to a tar: fixed header fields', () => {
  let work: string;
  let source: LocalStore;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-tar-headers-'));
    const image = await makeImage({ seed: testSeed('tar headers'), layers: 2, layerSize: 4096 });
    await writeOciLayout(image, join(work, 'layout'), `${name}:${tag}`);
    source = await LocalStore.open(join(work, 'source'));
    await importArchive(readDirEntries(join(work, 'layout')), source.startImport(), { label: 'layout' });
  });

  afterAll(async () => {
    source?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('writes every entry with mtime 0 and uid/gid 0, and the same images give the same entries', async () => {
    const tar = await exportTar(source);
    const entries = await headers(tar);
    expect(entries.map((e) => e.name)).toContain('index.json');
    expect(entries.map((e) => e.name)).toContain('oci-layout');
    for (const entry of entries) expect(entry).toEqual({ name: entry.name, mtime: 0, uid: 0, gid: 0 });
    const again = await headers(await exportTar(source));
    expect(again.sort(byName)).toEqual([...entries].sort(byName));
  });
});
