/**
 * Round 3 of the planted-bug audit (docs/mutation-testing.md): shutdown closes a keep-alive
 * connection as soon as its request is answered, while other requests are still in flight. Node
 * closes only the connections idle at the moment close() is called; without wharf's sweep a
 * connection whose request finished after that stayed open through the whole grace period, and
 * every test still passed (they end their requests with Connection: close). Here the grace period
 * is a minute, so only the sweep can close it within the test's deadline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../src/cli/start-server.js';
import { sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-shutdown-idle-'));
});
afterAll(async () => rm(dataDir, { recursive: true, force: true }));

interface HeldUpload {
  req: ClientRequest;
  rest: Buffer;
  response: Promise<IncomingMessage>;
}

/** A monolithic upload whose headers the server has parsed (100-continue) and half its body sent. */
function heldUpload(url: string, body: Buffer, agent: Agent | false): Promise<HeldUpload> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v2/shutdown/idle/blobs/uploads/?digest=${sha256(body)}`, {
      method: 'POST',
      agent,
      headers: { 'Content-Length': String(body.length), Expect: '100-continue' },
    });
    const response = new Promise<IncomingMessage>((done, failed) => {
      req.on('response', done);
      req.on('error', failed);
    });
    response.catch(reject);
    req.on('continue', () => {
      const half = body.length / 2;
      req.write(body.subarray(0, half), () => resolve({ req, rest: body.subarray(half), response }));
    });
    req.flushHeaders();
  });
}

describe('shutdown', () => {
  it('closes a keep-alive connection whose request ends during the grace period, while another is in flight', async () => {
    const server = await startServer({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      shutdownGraceMs: 60_000,
    });
    const url = `http://127.0.0.1:${server.port}`;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let closing: Promise<void> | undefined;
    let other: HeldUpload | undefined;
    try {
      const kept = await heldUpload(url, Buffer.alloc(64 * 1024, 1), agent);
      other = await heldUpload(url, Buffer.alloc(64 * 1024, 2), false);
      closing = server.close();

      kept.req.end(kept.rest);
      const answer = await withDeadline(kept.response, 20_000, 'the keep-alive upload answering');
      expect(answer.statusCode).toBe(201);
      answer.resume();
      const socket = answer.socket;
      // The other upload still holds the server open: only the sweep can close this idle connection now.
      await withDeadline(
        new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))),
        20_000,
        'the idle keep-alive connection closed by the server',
      );

      other.req.end(other.rest);
      expect((await withDeadline(other.response, 20_000, 'the other upload answering')).statusCode).toBe(201);
      await withDeadline(closing, 20_000, 'shutdown');
    } finally {
      // On a failure, nothing may hold the shutdown for its minute of grace.
      agent.destroy();
      other?.req.destroy();
      await (closing ?? server.close());
    }
  });
});
