/**
 * Round 13b of the planted-bug audit (docs/mutation-testing.md): a mirrored name's tags/list pages
 * through the upstream's tags with `n` and `last` as a local name's does. `last=` taken inclusively
 * (the tag named repeated at the top of the next page) passed every test: none paged a mirrored list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from './support/http.js';
import { sendJson, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const host = 'registry.example.test';
let upstream: ScriptedRegistry;
let wharf: WharfHandle;

beforeAll(async () => {
  upstream = await startScriptedRegistry({
    '/v2/team/app/tags/list': (_req, res) => sendJson(res, 200, { name: 'team/app', tags: ['v3', 'v1', 'v2'] }),
  });
  wharf = await startWharf({ upstreams: [{ host, url: upstream.url, prefetch: false }] });
});

afterAll(async () => {
  await wharf?.close();
  await upstream?.close();
});

async function tags(query: string): Promise<string[]> {
  const response = await call(wharf.url, `/v2/${host}/team/app/tags/list${query}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { tags: string[] }).tags;
}

describe('a mirrored tags/list, page by page', () => {
  it('lists the upstream tags sorted, and last= starts strictly after the tag named', async () => {
    expect(await tags('')).toEqual(['v1', 'v2', 'v3']);
    expect(await tags('?n=2')).toEqual(['v1', 'v2']);
    expect(await tags('?n=2&last=v2')).toEqual(['v3']);
    expect(await tags('?last=v1')).toEqual(['v2', 'v3']);
    expect(await tags('?last=v3')).toEqual([]);
  });
});
