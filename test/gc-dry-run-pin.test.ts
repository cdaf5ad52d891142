/**
 * Round 10a of the planted-bug audit (docs/mutation-testing.md): `wharf gc --dry-run` must say what
 * `wharf gc` would then remove, store.pin included. The dry run opens the store read-only (it runs
 * beside serve); a dry run that read the index without the pin predicate listed a pinned repository's
 * untagged image as going, where the real run keeps it. Checked through the command line, with
 * WHARF_STORE_PIN, on a store that serve filled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushTestImage } from './support/push-image.js';
import { composeImage, makeLayer } from './support/shared-layers.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf } from './support/wharf.js';
import type { TestImage } from './support/make-image.js';

const timeoutMs = 180_000;

interface Report {
  dryRun: boolean;
  manifests: { repository: string; digest: string }[];
  bytes: number;
}

describe('wharf gc --dry-run and store.pin', () => {
  let work: string;
  let dataDir: string;
  const olds = new Map<string, TestImage>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-gc-dry-pin-'));
    dataDir = join(work, 'data');
    const wharf = await startWharf({ dataDir });
    try {
      // In each repository v1 moves: the old image is untagged and unreferenced.
      for (const name of ['team/pinned', 'team/loose']) {
        const old = composeImage(`${name}/old`, [await makeLayer(`gc-dry-pin/${name}/old`, 4000)]);
        const current = composeImage(`${name}/current`, [await makeLayer(`gc-dry-pin/${name}/current`, 4000)]);
        await pushTestImage(wharf.url, name, 'v1', old);
        await pushTestImage(wharf.url, name, 'v1', current);
        olds.set(name, old);
      }
    } finally {
      await wharf.close();
    }
  }, timeoutMs);

  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it(
    'leaves a pinned repository out of what the dry run lists, as the real run then does',
    async () => {
      const env = { WHARF_STORE_PIN: 'team/pinned' };
      const dry = await runWharf(['gc', '--dry-run', '--grace', '0', '--json', '--data', dataDir], {
        env,
        timeoutMs: 60_000,
      });
      expect(dry.stderr).toBe('');
      expect(dry.code).toBe(0);
      const dryReport = JSON.parse(dry.stdout) as Report;
      const loose = { repository: 'team/loose', digest: olds.get('team/loose')?.root.digest };
      expect(dryReport.manifests.map(({ repository, digest }) => ({ repository, digest }))).toEqual([loose]);

      const real = await runWharf(['gc', '--grace', '0', '--json', '--data', dataDir], { env, timeoutMs: 60_000 });
      expect(real.code).toBe(0);
      const realReport = JSON.parse(real.stdout) as Report;
      expect(realReport.dryRun).toBe(false);
      expect({ ...realReport, dryRun: true }).toEqual(dryReport);
    },
    timeoutMs,
  );
});
