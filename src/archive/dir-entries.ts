/**
 * @module archive/dir-entries
 * An OCI layout directory as layout entries: the same checks as a tar (no
 * symlinks, no escaping paths) apply, since the same code reads them.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { EntryType, LayoutEntry } from './layout-entry.js';

/** Entries in an order that puts blobs before index.json, as a tar written by wharf has them. */
export async function* readDirEntries(root: string, prefix = ''): AsyncGenerator<LayoutEntry> {
  const names = (await readdir(join(root, prefix))).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const name of names) {
    const path = prefix === '' ? name : `${prefix}/${name}`;
    const info = await lstat(join(root, path));
    const type: EntryType = info.isFile()
      ? 'file'
      : info.isDirectory()
        ? 'directory'
        : info.isSymbolicLink()
          ? 'symlink'
          : 'other';
    if (type === 'directory') {
      yield { path: `${path}/`, type, size: 0, body: empty() };
      yield* readDirEntries(root, path);
    } else {
      yield {
        path,
        type,
        size: info.size,
        body: type === 'file' ? createReadStream(join(root, path), { highWaterMark: 1024 * 1024 }) : empty(),
      };
    }
  }
}

function rank(name: string): number {
  return name === 'blobs' ? 0 : name === 'index.json' ? 2 : 1;
}

async function* empty(): AsyncGenerator<Uint8Array> {
  // An entry without content.
}
