/**
 * Round 13c of the planted-bug audit (docs/mutation-testing.md): serve's start-up and the store
 * commands beside it, in process. A serve that cannot listen (port taken) must leave the data
 * directory unlocked, so the next start or command in the same process is not refused; a lock that
 * names this very process but that it does not hold (a previous incarnation with the same PID, PID 1
 * in a restarted container, written where /proc gave no start time) is stale; and `wharf gc
 * --dry-run` beside a running serve only reads: serve's writes in progress (tmp/*.part) stay.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir, lockFileName } from '../src/cli/data-dir-lock.js';
import { runGc } from '../src/cli/gc-command.js';
import { startServer } from '../src/cli/start-server.js';
import { startWharf } from './support/wharf.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-serve-store-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe('serve and the data directory lock', () => {
  it('releases the lock when it cannot listen, so the next start in this process may take the directory', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = taken.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      await expect(startServer({ dataDir: dir, host: '127.0.0.1', port, logLevel: 'silent' })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
    expect(await readdir(dir)).not.toContain(lockFileName);
    const lock = await lockDataDir(dir);
    await lock.release();
  });

  it('takes over a lock naming its own PID without a start time (a previous incarnation)', async () => {
    await writeFile(join(dir, lockFileName), `${process.pid} -\n`);
    const lock = await lockDataDir(dir);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('wharf gc --dry-run beside serve', () => {
  it('leaves serve’s writes in progress in tmp/ (opens the index read-only, cleans nothing)', async () => {
    const wharf = await startWharf({ dataDir: dir, keepData: true });
    const writing = join(dir, 'tmp', 'in-progress.part');
    try {
      await writeFile(writing, 'half a blob');
      const written: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = (chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      };
      try {
        await runGc({ data: dir, dryRun: true, json: true }, {});
      } finally {
        process.stdout.write = write;
      }
      expect(JSON.parse(written.join('')) as { dryRun: boolean }).toMatchObject({ dryRun: true });
      expect(await readdir(join(dir, 'tmp'))).toContain('in-progress.part');
    } finally {
      await wharf.close();
    }
  });
});
