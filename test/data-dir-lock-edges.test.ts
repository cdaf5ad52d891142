/**
 * Round 10a of the planted-bug audit (docs/mutation-testing.md): what the data directory's lock
 * leaves behind and whom it takes for alive. Every command that writes the store (import, preload,
 * gc, verify --repair, serve) takes it; the lock is written to a private temp file first and linked
 * into place, and that temp file must be gone afterwards whether the link won or lost (an air-gapped
 * site's data directory collects one per command otherwise). A lock that names a live process but no
 * start time (written where /proc was not readable) is that process's: it must not be taken over.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataDirInUseError, lockDataDir, lockFileName } from '../src/cli/data-dir-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-lock-edges-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

/** Field 22 of /proc/<pid>/stat: the start time the lock records. */
function startTimeOf(pid: number): string {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const start = text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  if (start === undefined) throw new Error(`no start time for ${pid}`);
  return start;
}

describe('the data directory lock', () => {
  it('leaves nothing but the lock while held, and nothing at all once released', async () => {
    const lock = await lockDataDir(dir);
    expect(await readdir(dir)).toEqual([lockFileName]);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves no temp file when it is refused because a live process holds the directory', async () => {
    const held = `${process.ppid} ${startTimeOf(process.ppid)}\n`;
    await writeFile(join(dir, lockFileName), held);
    await expect(lockDataDir(dir)).rejects.toBeInstanceOf(DataDirInUseError);
    expect(await readdir(dir)).toEqual([lockFileName]);
    expect(await readFile(join(dir, lockFileName), 'utf8')).toBe(held);
  });

  it('takes a live process that recorded no start time for the holder, and refuses', async () => {
    const held = `${process.ppid} -\n`;
    await writeFile(join(dir, lockFileName), held);
    const refused = await lockDataDir(dir).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(DataDirInUseError);
    expect((refused as DataDirInUseError).pid).toBe(process.ppid);
    expect(await readFile(join(dir, lockFileName), 'utf8')).toBe(held);
  });

  it('takes over the lock of a reused PID (another start time), and leaves no temp file', async () => {
    await writeFile(join(dir, lockFileName), `${process.ppid} 1\n`);
    const lock = await lockDataDir(dir);
    expect(await readFile(join(dir, lockFileName), 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+\\n$`));
    expect(await readdir(dir)).toEqual([lockFileName]);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });
});
