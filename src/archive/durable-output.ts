/**
 * @module archive/durable-output
 * What makes a file a command writes for its user (an archive carried across an air gap, a layout
 * folder, a blob) survive a crash or a power cut once the command said it wrote it: its bytes are
 * fsynced under a temp name, it is renamed into place, then its directory is fsynced (a directory's
 * entries are data of the directory). Without the first sync a crash can leave the final name on an
 * empty or short file (delayed allocation); without the last, the rename itself can be lost.
 */
import { createWriteStream } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';

/**
 * The fs calls that durability rests on: the stream a temp file is written through, opening the
 * files and directories that get fsynced, and the rename into place. Node's by default; a test hands
 * in wrappers to see each close, sync and rename in order (test/layout-durability.test.ts,
 * test/output-durability.test.ts), which no crash a test can cause would show (the page cache
 * survives it). Nothing else replaces them.
 */
export interface OutputFs {
  open(path: string, flags: string, mode?: number): Promise<FileHandle>;
  rename(from: string, to: string): Promise<void>;
  /** A new file (exclusive: never one that exists) written through a stream. */
  createWriteStream(path: string): Writable;
}

export const nodeOutputFs: OutputFs = {
  open,
  rename,
  createWriteStream: (path) => createWriteStream(path, { flags: 'wx' }),
};

/**
 * A file a command writes for its user through a stream, under a temp name beside `final`:
 * `commit()` ends the stream, waits for it to close (every byte handed to the kernel), then makes
 * the file durable under its final name; `discard()` removes what was written.
 */
export class TempOutput {
  readonly temp: string;
  readonly stream: Writable;

  constructor(
    readonly final: string,
    private readonly fs: OutputFs = nodeOutputFs,
  ) {
    this.temp = `${final}.${process.pid}.part`;
    this.stream = fs.createWriteStream(this.temp);
  }

  async commit(): Promise<void> {
    const failed = this.stream.errored;
    if (failed !== null) throw failed;
    // A stream a pipeline already ended may have closed: waiting for its close would wait forever.
    if (!this.stream.closed) {
      const closed = once(this.stream, 'close');
      this.stream.end();
      await closed;
    }
    await commitTempFile(this.temp, this.final, this.fs);
  }

  async discard(): Promise<void> {
    this.stream.destroy();
    await rm(this.temp, { force: true });
  }
}

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
