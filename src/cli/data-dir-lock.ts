/**
 * @module cli/data-dir-lock
 * One serving wharf per data directory (issue 8, finding 9): a second one would
 * clean tmp/ at start and delete the first one's writes in progress. The lock is
 * `<data>/wharf.lock` holding "<pid> <start time>", created whole with link(2)
 * (atomic, fails if it exists), removed on close. A lock whose process is gone
 * (kill -9, power loss) is stale and taken over; the start time from
 * /proc/<pid>/stat tells a reused PID from the holder.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const lockFileName = 'wharf.lock';

/** Refusal to start: another live process holds the directory. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`data directory ${dataDir} is in use by wharf (pid ${pid}); stop it first`);
    this.name = 'DataDirInUseError';
  }
}

export interface DataDirLock {
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  startTime: string | undefined;
}

/** Locks held by this process: a second server in one process (tests) is refused like another process. */
const heldHere = new Set<string>();
/** Attempts before giving up when locks keep changing under us (concurrent starts). */
const maxAttempts = 5;

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, lockFileName);
  if (heldHere.has(path)) throw new DataDirInUseError(dataDir, process.pid);
  const mine = `${process.pid} ${(await startTimeOf(process.pid)) ?? '-'}\n`;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if ((await createWhole(path, mine)) || (await takeOverStale(dataDir, path, mine))) {
      heldHere.add(path);
      return {
        release: async () => {
          heldHere.delete(path);
          if ((await readIfAny(path)) === mine) await rm(path, { force: true });
        },
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
  }
  throw new Error(`cannot lock data directory ${dataDir}: ${path} keeps changing`);
}

/**
 * Takes over a lock whose holder is dead, or throws DataDirInUseError naming a
 * live one. The takeover itself is guarded by a second lock file, so that two
 * processes finding the same stale lock cannot both replace it. false: retry.
 */
async function takeOverStale(dataDir: string, path: string, mine: string): Promise<boolean> {
  const text = await readIfAny(path);
  if (text === undefined) return false;
  const holder = parseHolder(text);
  if (holder !== undefined && (await isAlive(holder))) throw new DataDirInUseError(dataDir, holder.pid);
  const guard = `${path}.takeover`;
  if (!(await createWhole(guard, mine))) {
    const guardText = await readIfAny(guard);
    const guardHolder = guardText === undefined ? undefined : parseHolder(guardText);
    // A guard left by a process killed mid-takeover (a window of microseconds) is removed.
    if (guardText !== undefined && (guardHolder === undefined || !(await isAlive(guardHolder)))) {
      await rm(guard, { force: true });
    }
    return false;
  }
  try {
    if ((await readIfAny(path)) !== text) return false;
    await rm(path, { force: true });
    return await createWhole(path, mine);
  } finally {
    await rm(guard, { force: true });
  }
}

/** Writes a private temp file and links it to `path`: the lock appears complete or not at all. */
async function createWhole(path: string, text: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temp, text, { flag: 'wx' });
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

function parseHolder(text: string): Holder | undefined {
  const match = /^(\d+) (\S+)\n?$/.exec(text);
  if (match === null) return undefined;
  return { pid: Number(match[1]), startTime: match[2] === '-' ? undefined : match[2] };
}

/**
 * Whether the holder still runs. Our own PID in a lock we do not hold means a
 * previous incarnation (PID 1 in a restarted container); a zombie or another
 * process that got the PID since (another start time) is not the holder.
 */
async function isAlive(holder: Holder): Promise<boolean> {
  if (holder.pid === process.pid || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = await readStat(holder.pid);
  if (stat === undefined) return true;
  if (stat.state === 'Z') return false;
  return holder.startTime === undefined || holder.startTime === stat.startTime;
}

async function startTimeOf(pid: number): Promise<string | undefined> {
  return (await readStat(pid))?.startTime;
}

/** State (field 3) and start time in clock ticks since boot (field 22) of /proc/<pid>/stat; undefined without /proc. */
async function readStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  const text = await readIfAny(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19];
  return state === undefined || startTime === undefined ? undefined : { state, startTime };
}

async function readIfAny(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}
