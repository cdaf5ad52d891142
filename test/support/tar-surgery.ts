/**
 * @module test/support/tar-surgery
 * Reads a tar into memory and writes a changed copy: for hand-made damaged
 * bundles (a flipped byte, a missing blob, a `../` path, a symlink, a duplicate).
 * Test bundles are small, so holding them whole is fine here.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { extract, pack, type Header } from 'tar-stream';

export interface TarEntry {
  header: Header;
  data: Buffer;
}

export async function readTar(path: string): Promise<TarEntry[]> {
  const parser = extract();
  const entries: TarEntry[] = [];
  const done = (async () => {
    for await (const entry of parser) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ header: { ...entry.header }, data: Buffer.concat(chunks) });
    }
  })();
  parser.end(await readFile(path));
  await done;
  return entries;
}

export async function writeTar(path: string, entries: readonly TarEntry[]): Promise<void> {
  const out = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of out) chunks.push(chunk as Buffer);
  })();
  for (const entry of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = { ...entry.header, size: entry.header.type === 'file' ? entry.data.length : 0 };
      if (entry.header.type === 'file') out.entry(header, entry.data, (e) => (e ? reject(e) : resolve()));
      else out.entry(header, (e) => (e ? reject(e) : resolve()));
    });
  }
  out.finalize();
  await collected;
  await writeFile(path, Buffer.concat(chunks));
}
