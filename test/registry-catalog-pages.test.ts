/**
 * _catalog past one store batch, against a real in-process server with access rules (round 13a of
 * the planted-bug audit): the handler reads the store 100 names at a time at least and filters by
 * pull rights, so a first batch a client may not read must not end its listing, and a catalog asked
 * for without n answers up to 1000 names in one page. Every other catalog test had a few names only.
 * The server is spawned: a catalog loop that reads the same batch for ever (a cursor taken from the
 * wrong list) blocks its process, and only a separate one lets the client's deadline fail the test.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, pushBlob } from './support/http.js';
import { spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';

const root = { Authorization: `Basic ${Buffer.from('root:root-pw').toString('base64')}` };
const hidden = Array.from({ length: 120 }, (_, i) => `hidden/h${String(i).padStart(3, '0')}`);
const open = Array.from({ length: 105 }, (_, i) => `pub/p${String(i).padStart(3, '0')}`);

let dir: string;
let wharf: SpawnedWharf;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-catalog-pages-'));
  const config = join(dir, 'wharf.yaml');
  await writeFile(
    config,
    JSON.stringify({
      auth: {
        users: { root: bcrypt.hashSync('root-pw', 4) },
        access: [
          { repositories: ['**'], users: ['root'], allow: ['admin'] },
          { repositories: ['pub/**'], users: ['anonymous'], allow: ['pull'] },
        ],
      },
    }),
  );
  wharf = await spawnWharf(['--config', config, '--data', join(dir, 'data')], { timeoutMs: 60_000 });
  // One blob, mounted into every other name: each name is then a repository of the catalog.
  const [first, ...rest] = [...hidden, ...open];
  const digest = await pushBlob(wharf.url, first ?? '', 'catalog pages', root);
  for (const name of rest) {
    const mounted = await call(wharf.url, `/v2/${name}/blobs/uploads/?mount=${digest}&from=${first ?? ''}`, {
      method: 'POST',
      headers: root,
    });
    expect(mounted.status, name).toBe(201);
  }
}, 120_000);
afterAll(async () => {
  // SIGKILL: a server stuck in a loop never runs its SIGTERM handler.
  await wharf?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

const catalog = async (
  query: string,
  headers: Record<string, string> = {},
): Promise<{ repositories: string[]; link: string | null }> => {
  // A deadline of its own: a server reading one batch for ever never answers.
  const response = await call(wharf.url, `/v2/_catalog${query}`, { headers, signal: AbortSignal.timeout(20_000) });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { repositories: string[] };
  return { repositories: body.repositories, link: response.headers.get('link') };
};

describe('a catalog past one store batch', () => {
  it('reads on past a first batch the client may not pull: the readable names follow', async () => {
    const page = await catalog('?n=2');
    expect(page.repositories).toEqual(['pub/p000', 'pub/p001']);
    expect(page.link).toBe('</v2/_catalog?n=2&last=pub%2Fp001>; rel="next"');
    const all = await catalog('');
    expect(all.repositories).toEqual(open);
    expect(all.link).toBeNull();
  }, 60_000);

  it('answers up to 1000 names in one page without n, with no Link', async () => {
    const all = await catalog('', root);
    expect(all.repositories).toEqual([...hidden, ...open]);
    expect(all.link).toBeNull();
  }, 60_000);
});
