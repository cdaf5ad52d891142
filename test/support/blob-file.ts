/**
 * @module test/support/blob-file
 * Where a store keeps a blob's file (blobs/<alg>/<xx>/<hex>), the names of the files there, and the
 * damage a failing disk does: one byte flipped in place.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export function blobPath(dataDir: string, digest: string): string {
  const [algorithm = '', hex = ''] = digest.split(':');
  return join(dataDir, 'blobs', algorithm, hex.slice(0, 2), hex);
}

export async function flipByte(path: string, at: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    await handle.write(Buffer.from([(byte[0] ?? 0) ^ 0xff]), 0, 1, at);
  } finally {
    await handle.close();
  }
}

/** The names of the files under a store's blobs/, sorted (what an abort must leave as it was). */
export async function blobFiles(dataDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(path, entry.name));
      else found.push(entry.name);
    }
  };
  await walk(join(dataDir, 'blobs'));
  return found.sort();
}
