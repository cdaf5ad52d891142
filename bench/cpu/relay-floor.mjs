/* global process, console */
// The floor of a cold blob GET in Node on this machine (issue 12; docs/cold-path-cpu.md section 4): the
// least a verifying mirror must do, and nothing else. GET /<digest> fetches
// <UPSTREAM>/v2/<REPO>/blobs/<digest> with undici and relays each chunk to the client with
// backpressure; HASH=1 adds SHA-256 of every chunk, FILE=1 adds a temp file written in 1 MiB writev
// batches, one in flight, and fsynced at the end (then removed). No routing, no store, no verdict held back.
//   UPSTREAM=http://127.0.0.1:46000 REPO=x PORT=46001 HASH=1 FILE=1 node relay-floor.mjs
import http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'undici';

const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:46000';
const repo = process.env.REPO ?? 'x';
const hashing = process.env.HASH === '1';
const writing = process.env.FILE === '1';
const agent = new Agent({});
const batchBytes = 1024 * 1024;

async function relay(req, res) {
  const digest = (req.url ?? '').split('/').pop();
  const upstreamAnswer = await request(`${upstream}/v2/${repo}/blobs/${digest}`, { dispatcher: agent });
  res.writeHead(upstreamAnswer.statusCode, { 'content-length': upstreamAnswer.headers['content-length'] });
  const hash = hashing ? createHash('sha256') : undefined;
  const path = join(tmpdir(), `relay-floor-${randomUUID()}.part`);
  const file = writing ? await open(path, 'wx+') : undefined;
  let batch = [];
  let batched = 0;
  let position = 0;
  let inFlight = Promise.resolve();
  for await (const chunk of upstreamAnswer.body) {
    hash?.update(chunk);
    if (file !== undefined) {
      batch.push(chunk);
      batched += chunk.byteLength;
      if (batched >= batchBytes) {
        await inFlight;
        inFlight = file.writev(batch, position).then(() => undefined);
        position += batched;
        batch = [];
        batched = 0;
      }
    }
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  }
  if (file !== undefined) {
    await inFlight;
    if (batch.length > 0) await file.writev(batch, position);
  }
  hash?.digest('hex');
  res.end();
  if (file !== undefined) {
    await file.sync();
    await file.close();
    await rm(path);
  }
}

http
  .createServer((req, res) => {
    relay(req, res).catch((error) => {
      console.error(error);
      res.destroy();
    });
  })
  .listen(Number(process.env.PORT ?? 46001), '127.0.0.1');
