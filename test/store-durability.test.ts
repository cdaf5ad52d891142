/**
 * Durability order of every blob commit (issue 13, survivor 5): the file is fsynced, renamed into
 * blobs/, and its directory fsynced, in that order, before the index row is written; the parent of a
 * directory above it (blobs/sha256/<xx>, blobs/sha256) is fsynced before the rename, once per
 * directory per process. The kill -9
 * tests cannot show this (the page cache survives the death of a process, so a store with no
 * fsync at all passes them); what they leave out is observed here through the store's one seam
 * for it, the DurableFs handed to BlobFiles: real fs calls, wrapped to log each completed sync and
 * rename together with whether the index row existed at that moment.
 * What no test here can show is that the data reached the platter: see docs/durability.md.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import type { Logger } from '../src/oci/logger.js';
import { requireRepoName } from '../src/oci/reference.js';
import { FillRegistry } from '../src/proxy/fill-registry.js';
import type { DurableFs } from '../src/store/blob-files.js';
import { LocalStore } from '../src/store/local-store.js';
import { withDeadline } from './support/run.js';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const name = requireRepoName('durable/app');

interface Step {
  /** `sync <path>` or `rename <from> -> <to>`, paths relative to the data dir. */
  call: string;
  /** Whether the digest being committed had an index row when the call completed. */
  row: boolean;
}

let root: string;
let store: LocalStore;
let steps: Step[];
let watched: Digest | undefined;

/** Node's fs, logging each completed fsync (on any handle it opened) and rename. */
function loggingFs(): DurableFs {
  const log = (call: string): void => {
    steps.push({ call, row: watched !== undefined && store.contentSize(watched) !== undefined });
  };
  return {
    async open(path, flags) {
      const handle = await open(path, flags);
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'sync') {
            return async () => {
              // An fsync takes a while on a real disk (on tmpfs it is instant): a commit that does not
              // wait for it renames first, and the log shows it (round 7c: a fill's sync not awaited).
              await new Promise((resolve) => setTimeout(resolve, 20));
              await target.sync();
              log(`sync ${relative(root, path)}`);
            };
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    async rename(from, to) {
      await rename(from, to);
      log(`rename ${relative(root, from)} -> ${relative(root, to)}`);
    },
    async remove(path) {
      await rm(path, { force: true });
    },
  };
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-durable-'));
  steps = [];
  watched = undefined;
  store = await LocalStore.open(root, { blobFs: loggingFs() });
});
afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
});

function digestOf(bytes: Buffer): Digest {
  return requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

/** The store's first commit: blobs/sha256 and blobs/sha256/<xx> are new entries of blobs and blobs/sha256. */
const fresh = ['blobs', 'blobs/sha256'];

/**
 * What one commit of `digest` from `temp` must look like: the file synced; the parents of the
 * directories above it this process has not synced yet (`parents`); the rename; the file's directory
 * synced; no row yet.
 */
function commitSteps(temp: RegExp, digest: Digest, parents: string[]): unknown[] {
  const hex = digest.slice('sha256:'.length);
  const dir = `blobs/sha256/${hex.slice(0, 2)}`;
  return [
    { call: expect.stringMatching(new RegExp(`^sync ${temp.source}$`)) as unknown, row: false },
    ...parents.map((parent) => ({ call: `sync ${parent}`, row: false })),
    { call: expect.stringMatching(new RegExp(`^rename ${temp.source} -> ${dir}/${hex}$`)) as unknown, row: false },
    { call: `sync ${dir}`, row: false },
  ];
}

const partFile = /tmp\/[0-9a-f-]{36}\.part/;
const uploadFile = /tmp\/uploads\/[0-9a-f-]{36}/;

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

describe('every blob commit: fsync file, rename, fsync directory, then the index row', () => {
  it('a monolithic blob push', async () => {
    const bytes = Buffer.from('monolithic blob');
    watched = digestOf(bytes);
    await store.putBlob(name, watched, once(bytes), bytes.byteLength);
    expect(steps).toEqual(commitSteps(partFile, watched, fresh));
    expect(store.contentSize(watched)).toBe(bytes.byteLength);
  });

  // The directory made for a blob is an entry of blobs/sha256: without syncing that, a crash could
  // lose the directory and the synced file in it (round 7c's note).
  it('a blob in a directory no earlier commit made: blobs/sha256 synced again, blobs not', async () => {
    const first = Buffer.from('first blob of the store');
    const firstDigest = digestOf(first);
    await store.putBlob(name, firstDigest, once(first), first.byteLength);
    const prefix = firstDigest.slice('sha256:'.length, 'sha256:'.length + 2);
    let second: Buffer | undefined;
    for (let i = 0; second === undefined; i++) {
      const candidate = Buffer.from(`a blob elsewhere, try ${i}`);
      if (!digestOf(candidate).slice('sha256:'.length).startsWith(prefix)) second = candidate;
    }
    steps = [];
    watched = digestOf(second);
    await store.putBlob(name, watched, once(second), second.byteLength);
    expect(steps).toEqual(commitSteps(partFile, watched, ['blobs/sha256']));
  });

  // Round 7c: a directory synced only when the commit had just made it ("an existing directory's entry is on
  // disk already") passed, since every test here committed one blob into a fresh directory. The entry
  // that needs the sync is the new file's, in whichever directory it lands.
  it('a second blob in a directory an earlier commit made', async () => {
    const first = Buffer.from('first blob of the directory');
    const firstDigest = digestOf(first);
    await store.putBlob(name, firstDigest, once(first), first.byteLength);
    const prefix = firstDigest.slice('sha256:'.length, 'sha256:'.length + 2);
    let second: Buffer | undefined;
    for (let i = 0; second === undefined; i++) {
      const candidate = Buffer.from(`second blob, try ${i}`);
      if (digestOf(candidate).slice('sha256:'.length).startsWith(prefix)) second = candidate;
    }
    steps = [];
    watched = digestOf(second);
    await store.putBlob(name, watched, once(second), second.byteLength);
    expect(steps).toEqual(commitSteps(partFile, watched, []));
    expect(store.contentSize(watched)).toBe(second.byteLength);
  });

  it('a chunked upload session', async () => {
    const bytes = Buffer.from('chunked upload, two parts');
    watched = digestOf(bytes);
    const upload = await store.startUpload(name);
    await store.appendUpload(name, upload.id, once(bytes.subarray(0, 10)));
    await store.finishUpload(name, upload.id, watched, once(bytes.subarray(10)));
    expect(steps).toEqual(commitSteps(uploadFile, watched, fresh));
    expect(store.contentSize(watched)).toBe(bytes.byteLength);
  });

  it('a manifest push', async () => {
    const config = Buffer.from('{}');
    await store.putBlob(name, digestOf(config), once(config), config.byteLength);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: 2 },
        layers: [],
      }),
    );
    steps = [];
    watched = digestOf(manifest);
    await store.putManifest(name, 'v1' as never, manifest, 'application/vnd.oci.image.manifest.v1+json');
    const samePrefix = digestOf(config).slice(7, 9) === watched.slice(7, 9);
    expect(steps).toEqual(commitSteps(partFile, watched, samePrefix ? [] : ['blobs/sha256']));
    expect(store.contentSize(watched)).toBe(manifest.byteLength);
  });

  it('a blob filled from an upstream', async () => {
    const bytes = Buffer.alloc(300_000, 5);
    watched = digestOf(bytes);
    const fills = new FillRegistry(store, quiet);
    const handle = await fills.open(watched, requireRepoName('mirror.test/app'), async () => ({
      size: bytes.byteLength,
      body: once(bytes),
      cancel: async () => undefined,
    }));
    if (handle === undefined) throw new Error('no fill handle');
    const chunks: Uint8Array[] = [];
    for await (const chunk of handle.open()) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    await withDeadline(fills.settle(), 20_000, 'the fill settling');
    expect(steps).toEqual(commitSteps(partFile, watched, fresh));
    expect(store.contentSize(watched)).toBe(bytes.byteLength);
  });
});
