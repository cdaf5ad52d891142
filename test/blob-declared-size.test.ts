/**
 * @module test/blob-declared-size.test
 * A blob written with a declared size (store/blob-files.ts write, through LocalStore.putBlob: a
 * monolithic push, an import's descriptor) is held to it in both directions: a body that runs past
 * it is cut at the first chunk over (SIZE_INVALID, nothing more read, nothing kept), not streamed
 * whole to disk and refused at the end; a body that stops short is refused even when its digest
 * matches. Round 12b of the hand-planted bugs (docs/mutation-testing.md): the streaming bound
 * applied to manifests only, and a short body accepted, both passed every test (HTTP clients
 * cannot send a body that disagrees with its Content-Length, so the HTTP tests never tried one).
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { isOciError, type OciError } from '../src/oci/errors.js';
import { requireRepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { blobPath } from './support/blob-file.js';
import { withDeadline } from './support/run.js';
import { content, once } from './support/store-content.js';

const deadlineMs = 30_000;
const name = requireRepoName('team/sized');

let root: string;
let store: LocalStore | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-declared-size-'));
  store = await LocalStore.open(root);
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

function opened(): LocalStore {
  if (store === undefined) throw new Error('no store');
  return store;
}

async function refusal(run: () => Promise<unknown>): Promise<OciError> {
  const error = await withDeadline(
    run().then(
      () => undefined,
      (e: unknown) => e,
    ),
    deadlineMs,
    'the refused write',
  );
  if (!isOciError(error)) throw new Error(`expected an OciError, got ${String(error)}`);
  return error;
}

/** Nothing of a refused write is left: no row, no blob file, no temp file. */
async function expectNothingKept(digest: Digest): Promise<void> {
  expect(await opened().statBlob(name, digest)).toBeUndefined();
  await expect(stat(blobPath(root, digest))).rejects.toMatchObject({ code: 'ENOENT' });
  expect((await readdir(join(root, 'tmp'))).filter((f) => f.endsWith('.part'))).toEqual([]);
}

describe('a blob written with a declared size', () => {
  it('stops reading a body at the first chunk past the size: SIZE_INVALID, the rest never read, nothing kept', async () => {
    const chunk = Buffer.alloc(1024, 0x61);
    const chunks = 1000;
    let pulled = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < chunks; i++) {
        pulled++;
        yield chunk;
      }
    }
    const declared = content('ten bytes!');
    expect(declared.size).toBe(10);

    const error = await refusal(() => opened().putBlob(name, declared.digest, endless(), 10));
    expect({ code: error.code, status: error.status, message: error.message, detail: error.detail }).toEqual({
      code: 'SIZE_INVALID',
      status: 400,
      message: 'body is larger than the declared 10 bytes',
      detail: { expected: 10, received: 1024 },
    });
    // Streams read a little ahead; a write that ran to the end would have pulled all 1000 chunks.
    expect(pulled).toBeLessThan(100);
    await expectNothingKept(declared.digest);
  });

  it('refuses a body shorter than the size even when its digest matches, and keeps nothing', async () => {
    const short = content('sixty bytes of a layer, one byte short of what was declared.'.slice(0, 60));
    expect(short.size).toBe(60);

    const error = await refusal(() => opened().putBlob(name, short.digest, once(short.bytes), 61));
    expect({ code: error.code, status: error.status, message: error.message, detail: error.detail }).toEqual({
      code: 'SIZE_INVALID',
      status: 400,
      message: 'received 60 bytes, expected 61',
      detail: { expected: 61, received: 60 },
    });
    await expectNothingKept(short.digest);

    // The same bytes with their true size are taken.
    expect(await opened().putBlob(name, short.digest, once(short.bytes), 60)).toEqual({
      digest: short.digest,
      size: 60,
    });
  });
});
