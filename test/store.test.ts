/**
 * The local store on its own, on a real temp dir and SQLite file: migrations,
 * start-up housekeeping and verified writes.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest } from '../src/oci/digest.js';
import { requireRepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { sha256 } from './support/http.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-store-'));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

const name = requireRepoName('store/test');

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

describe('LocalStore', () => {
  it('applies the migrations once and records them in user_version', async () => {
    (await LocalStore.open(root)).close();
    (await LocalStore.open(root)).close();
    const db = new Database(join(root, 'index.db'), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(3);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('removes expired upload sessions and upload files without a session when it opens', async () => {
    const first = await LocalStore.open(root);
    const stale = await first.startUpload(name);
    await first.appendUpload(name, stale.id, chunks('abc'));
    first.close();
    await writeFile(join(root, 'tmp', 'uploads', 'orphan'), 'x');

    await new Promise((r) => setTimeout(r, 20));
    const second = await LocalStore.open(root, { uploadMaxAgeMs: 10 });
    try {
      expect(await second.getUpload(name, stale.id)).toBeUndefined();
      expect(await readdir(join(root, 'tmp', 'uploads'))).toEqual([]);
    } finally {
      second.close();
    }
  });

  it('keeps live sessions across a restart and finishes them with a re-hash', async () => {
    const first = await LocalStore.open(root);
    const upload = await first.startUpload(name);
    await first.appendUpload(name, upload.id, chunks('hello ', 'wor'));
    first.close();
    const second = await LocalStore.open(root);
    try {
      expect((await second.getUpload(name, upload.id))?.size).toBe(9);
      const digest = requireDigest(sha256('hello world'));
      expect(await second.finishUpload(name, upload.id, digest, chunks('ld'))).toEqual({ digest, size: 11 });
      const blob = await second.openBlob(name, digest);
      let text = '';
      for await (const chunk of blob?.open() ?? []) text += Buffer.from(chunk).toString();
      expect(text).toBe('hello world');
    } finally {
      second.close();
    }
  });

  it('writes nothing visible when a blob stream fails midway', async () => {
    const store = await LocalStore.open(root);
    try {
      async function* broken(): AsyncIterable<Uint8Array> {
        yield Buffer.from('partial');
        throw new Error('connection reset');
      }
      const digest = requireDigest(sha256('partial and more'));
      await expect(store.putBlob(name, digest, broken())).rejects.toThrow('connection reset');
      expect(await store.openBlob(name, digest)).toBeUndefined();
      expect(await readdir(join(root, 'tmp'))).toEqual(['uploads']);
      expect(await readdir(join(root, 'blobs'))).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('refuses a body longer than its declared size before it is all read', async () => {
    const store = await LocalStore.open(root);
    try {
      const digest = requireDigest(sha256('abcdef'));
      await expect(store.putBlob(name, digest, chunks('abc', 'def'), 4)).rejects.toMatchObject({
        code: 'SIZE_INVALID',
      });
      await expect(store.putBlob(name, digest, chunks('abc'), 6)).rejects.toMatchObject({ code: 'SIZE_INVALID' });
      expect(await store.openBlob(name, digest)).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it('notices a tag moved by another process within a second (lookup cache + data_version)', async () => {
    const reader = await LocalStore.open(root);
    const writer = await LocalStore.open(root);
    try {
      const push = async (store: LocalStore, seed: string): Promise<string> => {
        const config = Buffer.from(JSON.stringify({ seed }));
        const configDigest = requireDigest(sha256(config));
        await store.putBlob(name, configDigest, chunks(config.toString()));
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: {
              mediaType: 'application/vnd.oci.image.config.v1+json',
              digest: configDigest,
              size: config.length,
            },
            layers: [],
          }),
        );
        return (
          await store.putManifest(name, 'latest' as never, manifest, 'application/vnd.oci.image.manifest.v1+json')
        ).digest;
      };
      const first = await push(reader, 'one');
      expect((await reader.statManifest(name, 'latest' as never))?.digest).toBe(first);
      const second = await push(writer, 'two');
      await new Promise((r) => setTimeout(r, 1100));
      expect((await reader.statManifest(name, 'latest' as never))?.digest).toBe(second);
    } finally {
      reader.close();
      writer.close();
    }
  });
});
