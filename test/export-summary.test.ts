/**
 * What `wharf export` says it wrote (round 8c of planted bugs): the blobs and bytes in its summary
 * line are those it wrote into the archive, each once; an image whose blobs another image of the same
 * export already wrote adds none. Real parts: a store on disk, the CLI spawned.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeHolding } from './support/layout-store.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { runWharf } from './support/spawn-wharf.js';

let work: string;
let image: TestImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-export-summary-'));
  image = await makeImage({ seed: testSeed('export-summary'), layers: 2 });
  // The same image under two tags: the second one's blobs are all written already.
  const store = await storeHolding(work, 'registry.example.test/team/app', { v1: image, v2: image });
  store.close();
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the summary of wharf export', () => {
  it('counts each blob once, however many images of the export name it', async () => {
    const bundle = join(work, 'bundle.tar');
    const exported = await runWharf(
      [
        'export',
        'registry.example.test/team/app:v1',
        'registry.example.test/team/app:v2',
        '-o',
        bundle,
        '--data',
        join(work, 'store'),
      ],
      { timeoutMs: 60_000 },
    );
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain(`exported 2 images (${image.blobs.size} blobs, `);
  });
});
