/**
 * A client that opens a TCP connection to the TLS server and never starts the handshake holds a
 * socket and a file descriptor: limits.headerTimeout bounds the handshake too (Node's own default
 * is 120 s). Round 5 of the hand-planted audit (docs/mutation-testing.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/cli/start-server.js';
import { withDeadline } from './support/run.js';
import { writeTestCertificate } from './support/test-certificate.js';

let dir: string;
let server: RunningServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-tls-handshake-'));
  const tls = await writeTestCertificate(dir, 'tls');
  server = await startServer({
    dataDir: join(dir, 'data'),
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    upstreams: [],
    tls,
    limits: { headerTimeoutMs: 500 },
  });
}, 60_000);
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('TLS handshake deadline', () => {
  it('closes a connection that never starts its handshake after limits.headerTimeout', async () => {
    expect(server.scheme).toBe('https');
    const socket = connect(server.port, '127.0.0.1');
    const closed = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    // 500 ms is the deadline under test; 20 s only keeps a broken server from hanging the suite.
    const received = await withDeadline(closed, 20_000, 'the server closing a silent TLS connection');
    expect(received.byteLength).toBe(0);
  });
});
