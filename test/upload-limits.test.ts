/**
 * Open upload sessions are bounded (issue 8, finding 7: 22,000 anonymous POSTs
 * left 22,000 sessions, each a row and a file, for 24 h). Past the global cap or
 * the per-client one, POST answers 429 TOOMANYREQUESTS with Retry-After; a
 * session that finishes, is cancelled or expires gives its slot back, and one
 * that never received a byte expires much sooner than one in progress.
 * Clients are told apart by address: 127.0.0.2 and 127.0.0.3 are loopback too.
 */
import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request from a chosen local address, on a connection of its own. */
function send(
  base: string,
  path: string,
  options: { method: string; from?: string; body?: string; headers?: Record<string, string> },
): Promise<Answer> {
  const answer = new Promise<Answer>((resolve, reject) => {
    const req = request(new URL(path, base), {
      method: options.method,
      localAddress: options.from ?? '127.0.0.1',
      agent: false,
      headers: { 'Content-Length': String(Buffer.byteLength(options.body ?? '')), ...options.headers },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
  return withDeadline(answer, 20_000, `${options.method} ${path} from ${options.from ?? '127.0.0.1'}`);
}

const post = (base: string, name: string, from?: string): Promise<Answer> =>
  send(base, `/v2/${name}/blobs/uploads/`, { method: 'POST', from });

function expectTooMany(answer: Answer): void {
  expect(answer.status, answer.body).toBe(429);
  expect(answer.headers['retry-after']).toBe('60');
  const body = JSON.parse(answer.body) as { errors: { code: string; message: string }[] };
  expect(body.errors[0]?.code).toBe('TOOMANYREQUESTS');
}

let wharf: WharfHandle | undefined;
afterEach(async () => {
  await wharf?.close();
  wharf = undefined;
});

describe('upload session caps', () => {
  it('refuses the 101st open session of one client by default, with a 429 and Retry-After', async () => {
    wharf = await startWharf();
    for (let i = 0; i < 100; i++) expect((await post(wharf.url, 'flood/app')).status).toBe(202);
    expectTooMany(await post(wharf.url, 'flood/app'));
    // Another client still gets sessions, and nothing was created for the refused POST.
    expect((await post(wharf.url, 'flood/app', '127.0.0.2')).status).toBe(202);
    expect(await readdir(join(wharf.dataDir, 'tmp', 'uploads'))).toHaveLength(101);
  });

  it('caps per client and in all; finishing or cancelling a session frees its slot', async () => {
    wharf = await startWharf({ uploads: { maxSessions: 6, maxSessionsPerClient: 3 } });
    const base = wharf.url;
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await post(base, 'caps/app');
      expect(answer.status).toBe(202);
      mine.push(String(answer.headers.location));
    }
    expectTooMany(await post(base, 'caps/app'));
    for (let i = 0; i < 3; i++) expect((await post(base, 'caps/other', '127.0.0.2')).status).toBe(202);
    // Six open in all: a third client, under its own cap, meets the global one.
    expectTooMany(await post(base, 'caps/app', '127.0.0.3'));

    expect((await send(base, mine[0] ?? '', { method: 'DELETE' })).status).toBe(204);
    const again = await post(base, 'caps/app');
    expect(again.status).toBe(202);
    expectTooMany(await post(base, 'caps/app'));

    const content = 'finished';
    const put = await send(base, `${mine[1]}?digest=${sha256(content)}`, { method: 'PUT', body: content });
    expect(put.status, put.body).toBe(201);
    expect((await post(base, 'caps/app')).status).toBe(202);
  });

  it('expires a session that never received a byte sooner, and gives its slot back', async () => {
    wharf = await startWharf({ uploads: { maxSessions: 2, emptyMaxAgeMs: 500 } });
    const base = wharf.url;
    const started = String((await post(base, 'expire/app')).headers.location);
    const patched = await send(base, started, { method: 'PATCH', body: 'x' });
    expect(patched.status).toBe(202);
    const empty = String((await post(base, 'expire/app')).headers.location);
    expectTooMany(await post(base, 'expire/app'));

    await new Promise((resolve) => setTimeout(resolve, 700));
    expect((await post(base, 'expire/app')).status).toBe(202);
    expect((await send(base, empty, { method: 'GET' })).status).toBe(404);
    const kept = await send(base, started, { method: 'GET' });
    expect(kept.status).toBe(204);
    expect(kept.headers.range).toBe('0-0');
  });
});
