/**
 * One serving wharf per data directory (issue 8, finding 9): a second `wharf serve` on the
 * same directory started without complaint, cleaned tmp/ and made the first one's push in
 * flight fail with a 500. Now the second one exits with one line naming the holder, touching
 * nothing; `wharf verify` (read-only) still runs beside; a lock left by a dead process
 * (kill -9) or by a reused PID is taken over, and a clean stop removes it.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { runWharf, spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';
import { startWharf } from './support/wharf.js';

let dataDir: string;
const running: SpawnedWharf[] = [];
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-lock-'));
});
afterEach(async () => {
  for (const wharf of running.splice(0)) await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf exiting');
  await rm(dataDir, { recursive: true, force: true });
});

async function serve(): Promise<SpawnedWharf> {
  const wharf = await spawnWharf(['--data', dataDir]);
  running.push(wharf);
  return wharf;
}

/** The PID of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  const pid = child.pid ?? 0;
  await withDeadline(new Promise((resolve) => child.on('exit', resolve)), 10_000, '`true` exiting');
  return pid;
}

const lockPath = (): string => join(dataDir, 'wharf.lock');

describe('data directory lock', () => {
  it('refuses a second serve with one line, leaving the first one’s push in flight intact', async () => {
    const first = await serve();
    const pid = first.child.pid ?? 0;

    // A monolithic push with half its body sent: its temp file is what a second server would delete.
    const body = Buffer.alloc(200_000, 5);
    const { hostname, port } = new URL(first.url);
    const push = request({
      host: hostname,
      port,
      method: 'POST',
      path: `/v2/lock/app/blobs/uploads/?digest=${sha256(body)}`,
      headers: { 'Content-Length': String(body.length) },
    });
    const answered = new Promise<number>((resolve, reject) => {
      push.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      push.on('error', reject);
    });
    push.write(body.subarray(0, 100_000));
    const partFile = async (): Promise<string[]> =>
      (await readdir(join(dataDir, 'tmp'))).filter((f) => f.endsWith('.part'));
    await withDeadline(
      (async () => {
        while ((await partFile()).length === 0) await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
      'the push writing its temp file',
    );
    const parts = await partFile();

    // Before the lock, this second server started (and never exited) after cleaning tmp/.
    const second = await runWharf(['serve', '--listen', '127.0.0.1:0', '--data', dataDir], { timeoutMs: 20_000 });
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(`error: data directory ${dataDir} is in use by wharf (pid ${pid}); stop it first\n`);
    expect(second.stdout).toBe('');
    expect(await partFile()).toEqual(parts);
    expect(await readFile(lockPath(), 'utf8')).toMatch(new RegExp(`^${pid} \\d+\\n$`));

    push.end(body.subarray(100_000));
    expect(await withDeadline(answered, 20_000, 'the push finishing')).toBe(201);

    const verify = await runWharf(['verify', '--data', dataDir], { timeoutMs: 60_000 });
    expect({ code: verify.code, stderr: verify.stderr }).toEqual({ code: 0, stderr: '' });

    // A clean stop removes the lock; the next serve starts.
    running.splice(running.indexOf(first), 1);
    expect((await withDeadline(first.kill('SIGTERM'), 20_000, 'first wharf stopping')).code).toBe(0);
    await expect(readFile(lockPath(), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    await serve();
  });

  it('takes over the lock of a process killed with -9', async () => {
    const first = await serve();
    await withDeadline(first.kill('SIGKILL'), 10_000, 'first wharf dying');
    running.splice(running.indexOf(first), 1);
    expect(await readFile(lockPath(), 'utf8')).toMatch(new RegExp(`^${first.child.pid} `));
    const second = await serve();
    expect(await readFile(lockPath(), 'utf8')).toMatch(new RegExp(`^${second.child.pid} \\d+\\n$`));
  });

  it('takes over a lock naming a dead PID, or a live PID that started at another time', async () => {
    await writeFile(lockPath(), `${await deadPid()} 12345\n`);
    const wharf = await serve();
    expect(await readFile(lockPath(), 'utf8')).toMatch(new RegExp(`^${wharf.child.pid} `));
    await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf dying');
    running.splice(0);

    // This test process is alive, but it did not start at tick 1: the PID was reused.
    await writeFile(lockPath(), `${process.pid} 1\n`);
    const again = await serve();
    expect(await readFile(lockPath(), 'utf8')).toMatch(new RegExp(`^${again.child.pid} `));
  });

  it('refuses a second server in the same process too', async () => {
    const first = await startWharf({ dataDir });
    try {
      await expect(startWharf({ dataDir })).rejects.toThrow(`data directory ${dataDir} is in use by wharf`);
    } finally {
      await first.close();
    }
    const again = await startWharf({ dataDir });
    await again.close();
  });
});
