/**
 * @module test/support/logging-output-fs
 * The OutputFs seam of a command's durable output (src/archive/durable-output.ts) as Node's calls,
 * logging each close of a stream it made, each completed fsync (on any handle it opened) and rename,
 * paths relative to `dir`: what the durability tests read the order of closes, syncs and renames
 * from. A file opened while a stream it made on that path is still open (a sync before the stream
 * flushed its last bytes) is logged as such, whatever the timing of the close that follows.
 */
import { createWriteStream } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { relative } from 'node:path';
import type { OutputFs } from '../../src/archive/durable-output.js';

export function loggingFs(dir: string, steps: string[]): OutputFs {
  const writing = new Set<string>();
  return {
    createWriteStream(path) {
      const stream = createWriteStream(path, { flags: 'wx' });
      writing.add(path);
      stream.on('close', () => {
        writing.delete(path);
        steps.push(`close ${relative(dir, path)}`);
      });
      return stream;
    },
    async open(path, flags, mode) {
      if (writing.has(path)) steps.push(`open ${relative(dir, path)} before its stream closed`);
      const handle = await open(path, flags, mode);
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'sync') {
            return async () => {
              await target.sync();
              steps.push(`sync ${relative(dir, path) || '.'}`);
            };
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    async rename(from, to) {
      await rename(from, to);
      steps.push(`rename ${relative(dir, from)} -> ${relative(dir, to)}`);
    },
  };
}
