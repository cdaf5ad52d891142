/**
 * Round 7b of the planted-bug audit (docs/mutation-testing.md): releasing the data directory's lock
 * removes the lock file only while it is still this process's. A process that was stopped long
 * enough (SIGSTOP, a frozen VM) can find its lock taken over by another wharf; its release must not
 * then delete the other one's lock, which would let a third process in beside it.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir, lockFileName } from '../src/cli/data-dir-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-lock-release-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe('releasing the data directory lock', () => {
  it('removes its own lock file', async () => {
    const lock = await lockDataDir(dir);
    await lock.release();
    await expect(readFile(join(dir, lockFileName), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('leaves a lock file another process holds now (taken over while this one was stopped)', async () => {
    const lock = await lockDataDir(dir);
    // The parent process is alive: the lock names it, as a takeover by it would have written it.
    const other = `${process.ppid} -\n`;
    await writeFile(join(dir, lockFileName), other);
    await lock.release();
    expect(await readFile(join(dir, lockFileName), 'utf8')).toBe(other);
  });
});
