/**
 * Connections are bounded (issue 8, finding 7): 300 POSTs announcing a body that never
 * came stayed open forever (requestTimeout 0), 600 exhausted the server's descriptors and
 * it refused everything, and nothing capped connections. Against a spawned wharf with
 * test-short deadlines: stalled bodies and trickled headers are closed while the server
 * keeps answering; past limits.maxConnections new connections are closed at once, the
 * open ones are still served, and descriptors and memory stay bounded (read from /proc).
 */
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { withDeadline } from '../support/run.js';
import { spawnWharf, type SpawnedWharf } from '../support/spawn-wharf.js';
import { fetchBytes, MiB, openDescriptors, residentBytes, waitUntil } from './fault-support.js';

let wharf: SpawnedWharf | undefined;
let dataDir: string | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  if (wharf !== undefined) await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf exiting');
  wharf = undefined;
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

async function start(env: Record<string, string>): Promise<{ wharf: SpawnedWharf; pid: number }> {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-faults-conn-'));
  wharf = await spawnWharf(['--data', dataDir], { env });
  return { wharf, pid: wharf.child.pid ?? 0 };
}

interface Attacker {
  socket: Socket;
  /** Resolves when the connection is gone, whoever closed it. */
  closed: Promise<void>;
  isClosed(): boolean;
}

/** Opens a raw connection and sends `first` once connected. */
function attack(url: string, first: string): Promise<Attacker> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  let gone = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      gone = true;
      resolve();
    }),
  );
  const attacker = { socket, closed, isClosed: () => gone };
  const connected = new Promise<Attacker>((resolve) =>
    socket.once('connect', () => {
      if (first !== '') socket.write(first);
      resolve(attacker);
    }),
  );
  return withDeadline(Promise.race([connected, closed.then(() => attacker)]), 20_000, 'connecting');
}

async function answersV2(url: string): Promise<boolean> {
  const answer = await fetchBytes(`${url}/v2/`, { dispatcher: new Client(url) }, 10_000);
  return answer.status === 200;
}

describe('slow clients', () => {
  it('closes 300 requests whose announced body never comes, answering others meanwhile and after', async () => {
    const { wharf, pid } = await start({ WHARF_IDLE_TIMEOUT: '2s', WHARF_HEADER_TIMEOUT: '2s' });
    expect(await answersV2(wharf.url)).toBe(true);
    const fdsBefore = await openDescriptors(pid);
    const rssBefore = await residentBytes(pid);

    // Monolithic pushes (each holds a temp file) and session POSTs (answered 202, body still owed).
    const digest = `sha256:${'ab'.repeat(32)}`;
    const attackers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        attack(
          wharf.url,
          `POST /v2/slow/app${i % 3}/blobs/uploads/${i % 3 === 0 ? '' : `?digest=${digest}`} HTTP/1.1\r\n` +
            `Host: ${wharf.host}\r\nContent-Length: 1048576\r\n\r\n` +
            'x'.repeat(100),
        ),
      ),
    );
    expect(await answersV2(wharf.url)).toBe(true);
    await withDeadline(
      Promise.all(attackers.map((a) => a.closed)),
      30_000,
      'the server closing 300 connections whose body stalled',
    );
    expect(await answersV2(wharf.url)).toBe(true);
    await waitUntil(
      async () => ((await openDescriptors(pid)) <= fdsBefore + 5 ? true : undefined),
      10_000,
      `descriptors back near ${fdsBefore}`,
    );
    // Generous: the point is that 300 stalled requests leave nothing behind that grows.
    expect(await residentBytes(pid)).toBeLessThan(rssBefore + 64 * MiB);
  });

  it('closes connections that trickle their headers past limits.headerTimeout', async () => {
    const { wharf } = await start({ WHARF_HEADER_TIMEOUT: '1s' });
    const attackers = await Promise.all(Array.from({ length: 20 }, () => attack(wharf.url, 'GET /v2/ HTTP/1.1\r\n')));
    const trickle = setInterval(() => {
      for (const { socket } of attackers) if (!socket.destroyed) socket.write('X-A: b\r\n');
    }, 200);
    try {
      await withDeadline(
        Promise.all(attackers.map((a) => a.closed)),
        20_000,
        'the server closing 20 connections that never finish their headers',
      );
    } finally {
      clearInterval(trickle);
    }
    expect(await answersV2(wharf.url)).toBe(true);
  });
});

describe('connection cap', () => {
  it('closes connections past limits.maxConnections at once and keeps serving the open ones', async () => {
    const { wharf, pid } = await start({ WHARF_MAX_CONNECTIONS: '20' });
    const keeper = new Client(wharf.url, { keepAliveTimeout: 60_000 });
    try {
      const before = await fetchBytes(`${wharf.url}/v2/`, { dispatcher: keeper });
      expect(before.status).toBe(200);
      const fdsBefore = await openDescriptors(pid);

      // 40 connections that send nothing: 19 fit beside the keeper, the others are closed at once.
      const attackers = await Promise.all(Array.from({ length: 40 }, () => attack(wharf.url, '')));
      const closedNow = await waitUntil(
        async () => {
          const closed = attackers.filter((a) => a.isClosed()).length;
          return closed >= 21 ? closed : undefined;
        },
        10_000,
        'at least 21 of 40 connections past the cap closed by the server',
      );
      expect(closedNow).toBeLessThanOrEqual(21);
      expect(await openDescriptors(pid)).toBeLessThanOrEqual(fdsBefore + 19 + 3);

      // The connection it already had is still answered.
      expect((await fetchBytes(`${wharf.url}/v2/`, { dispatcher: keeper })).status).toBe(200);

      for (const { socket } of attackers) socket.destroy();
      await waitUntil(
        async () => ((await answersV2(wharf.url).catch(() => false)) ? true : undefined),
        10_000,
        'a new connection answered once the attackers left',
      );
    } finally {
      await keeper.close();
    }
  });
});
