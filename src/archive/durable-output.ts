/**
 * @module archive/durable-output
 * What makes a file a command writes for its user (an archive carried across an air gap, a layout
 * folder, a blob) survive a crash or a power cut once the command said it wrote it: its bytes are
 * fsynced under a temp name, it is renamed into place, then its directory is fsynced (a directory's
 * entries are data of the directory). Without the first sync a crash can leave the final name on an
 * empty or short file (delayed allocation); without the last, the rename itself can be lost.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The fs calls that durability rests on: opening the files and directories that get fsynced, and
 * the rename into place. Node's by default; a test hands in wrappers to see each sync and rename in
 * order (test/layout-durability.test.ts, test/output-durability.test.ts), which no crash a test can
 * cause would show (the page cache survives it). Nothing else replaces them.
 */
export interface OutputFs {
  open(path: string, flags: string, mode?: number): Promise<FileHandle>;
  rename(from: string, to: string): Promise<void>;
}

export const nodeOutputFs: OutputFs = { open, rename };

/** Syncs each directory in turn, so the renames into it are durable. */
export async function syncDirs(fs: OutputFs, dirs: readonly string[]): Promise<void> {
  for (const path of dirs) await syncPath(fs, path);
}

/** A file written whole under `temp` (its stream closed) becomes `final`: synced, renamed, its directory synced. */
export async function commitTempFile(temp: string, final: string, fs: OutputFs = nodeOutputFs): Promise<void> {
  await syncPath(fs, temp);
  await fs.rename(temp, final);
  await syncDirs(fs, [dirname(final)]);
}

async function syncPath(fs: OutputFs, path: string): Promise<void> {
  const handle = await fs.open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
