/**
 * Which server `wharf stats` asks for hit counters when no --url is given (round 11c): the one its
 * config's `listen` and `tls` describe, as a loopback client reaches it. `0.0.0.0` and `::` are
 * reached at 127.0.0.1 and [::1]; with tls.cert/tls.key set it is https. The store is seeded and
 * a wharf.lock file says a server holds it; the server is a loopback stand-in (or none).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedStore } from './support/seeded-store.js';
import { runWharf } from './support/spawn-wharf.js';

let dataDir: string;
let server: Server;
let port: number;

const exposition = [
  'wharf_cache_results_total{route="blob",result="hit"} 3',
  'wharf_cache_results_total{route="blob",result="fill"} 1',
  '',
].join('\n');

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-stats-url-'));
  await seedStore(dataDir);
  await writeFile(join(dataDir, 'wharf.lock'), `${process.pid}\n`);
  server = createServer((req, res) => {
    res.writeHead(req.url === '/metrics' ? 200 : 404, { 'Content-Type': 'text/plain' }).end(exposition);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

async function statsHits(env: Record<string, string>): Promise<unknown> {
  const out = await runWharf(['stats', '--json', '--data', dataDir], { env, timeoutMs: 60_000 });
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  return (JSON.parse(out.stdout) as { hits: unknown }).hits;
}

describe('wharf stats without --url', () => {
  it('asks the server listening on every address at 127.0.0.1', async () => {
    expect(await statsHits({ WHARF_LISTEN: `:${port}` })).toMatchObject({
      url: `http://127.0.0.1:${port}`,
      hits: 3,
      misses: 1,
      ratio: 0.75,
    });
  }, 90_000);

  it('asks a TLS server over https, and one on :: at [::1]', async () => {
    const tls = await statsHits({
      WHARF_LISTEN: `127.0.0.1:${port}`,
      WHARF_TLS_CERT: join(dataDir, 'cert.pem'),
      WHARF_TLS_KEY: join(dataDir, 'key.pem'),
    });
    // The stand-in speaks plain HTTP: a TLS handshake with it fails, and the line names the https URL.
    expect(tls).toMatchObject({
      unavailable: expect.stringMatching(
        new RegExp(`^no wharf serve answered at https://127\\.0\\.0\\.1:${port}/metrics \\(`),
      ) as unknown,
    });
    const any6 = await statsHits({ WHARF_LISTEN: `[::]:${port}` });
    expect(any6).toMatchObject({
      unavailable: expect.stringMatching(
        new RegExp(`^no wharf serve answered at http://\\[::1\\]:${port}/metrics \\(`),
      ) as unknown,
    });
  }, 90_000);
});
