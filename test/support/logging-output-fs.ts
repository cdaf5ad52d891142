/**
 * @module test/support/logging-output-fs
 * The OutputFs seam of a command's durable output (src/archive/durable-output.ts) as Node's calls,
 * logging each completed fsync (on any handle it opened) and rename, paths relative to `dir`: what
 * the durability tests read the order of syncs and renames from.
 */
import { open, rename } from 'node:fs/promises';
import { relative } from 'node:path';
import type { OutputFs } from '../../src/archive/durable-output.js';

export function loggingFs(dir: string, steps: string[]): OutputFs {
  return {
    async open(path, flags, mode) {
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
