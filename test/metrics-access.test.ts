/**
 * Who may read /metrics when users are configured (ADR 0007, round 11c): clients on a loopback
 * address and signed-in admins; anyone else is asked to sign in (401 with a Basic challenge, what
 * Prometheus' basic_auth answers) or refused (403). Every test client connects over 127.0.0.1; the
 * test's HTTP server presents the connection to wharf's request listener as coming from 10.1.2.3,
 * the one way to exercise a remote client without leaving loopback.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import bcrypt from 'bcryptjs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientAuth } from '../src/cli/client-auth-setup.js';
import { createRegistryApp } from '../src/registry/app.js';
import { LocalStore } from '../src/store/local-store.js';

const exposition = 'wharf_store_blobs 7\n';
const passwords = { root: 'root-secret', reader: 'reader-secret' };

let dataDir: string;
let store: LocalStore;
const servers: Server[] = [];

/** A server for wharf's app whose every client appears to come from `remote` (undefined: as it is). */
async function serve(metricsPublic: boolean, remote: string | undefined): Promise<string> {
  const auth = createClientAuth({
    users: new Map(Object.entries(passwords).map(([user, password]) => [user, bcrypt.hashSync(password, 4)])),
    access: [
      { repositories: ['**'], users: ['root'], allow: ['admin'] },
      { repositories: ['**'], users: ['reader'], allow: ['pull'] },
    ],
    tokenTtlMs: 60_000,
    realm: undefined,
  });
  const app = createRegistryApp({
    source: store,
    sink: store,
    logger: pino({ level: 'silent' }),
    auth,
    health: { metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: exposition }), metricsPublic },
  });
  const listener = getRequestListener(app.fetch);
  const server = createServer((incoming, outgoing) => {
    if (remote !== undefined) Object.defineProperty(incoming.socket, 'remoteAddress', { value: remote });
    void listener(incoming, outgoing);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/metrics`, { headers, signal: AbortSignal.timeout(20_000) });
}

async function codeOf(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-metrics-access-'));
  store = await LocalStore.open(dataDir);
}, 60_000);

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  store?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe('/metrics with users configured', () => {
  it('from a remote client without credentials: 401 UNAUTHORIZED with a Basic challenge', async () => {
    const url = await serve(false, '10.1.2.3');
    const response = await scrape(url);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="wharf metrics"');
    expect(await codeOf(response)).toBe('UNAUTHORIZED');
  }, 60_000);

  it('from a remote user who may only pull: 403 DENIED, nothing of the exposition', async () => {
    const url = await serve(false, '10.1.2.3');
    const response = await scrape(url, basic('reader', passwords.reader));
    expect(response.status).toBe(403);
    expect(await codeOf(response)).toBe('DENIED');
  }, 60_000);

  it('from a remote admin, from a loopback client, and from anyone with metrics.public: the exposition', async () => {
    const remote = await serve(false, '10.1.2.3');
    const admin = await scrape(remote, basic('root', passwords.root));
    expect(admin.status).toBe(200);
    expect(await admin.text()).toBe(exposition);
    const loopback = await scrape(await serve(false, undefined));
    expect(loopback.status).toBe(200);
    expect(await loopback.text()).toBe(exposition);
    const open = await scrape(await serve(true, '10.1.2.3'));
    expect(open.status).toBe(200);
    expect(await open.text()).toBe(exposition);
  }, 60_000);
});
