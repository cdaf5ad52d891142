/**
 * @module cli/explain-error
 * The one line the command line prints for an error: `error: CODE: message`,
 * without the code twice (Node's file errors start their message with it), and
 * for a file the process may not touch (EACCES, EPERM, EROFS) the path and the
 * option that named it, so the fix is obvious.
 */
import { sep } from 'node:path';
import { ConfigError } from './config-values.js';

/** Where a path came from: the option that set it, for a message. */
export interface PathOption {
  path: string;
  option: string;
}

const permissionCodes: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EROFS']);

/** The first line of a CLI error, without the `error: ` prefix. */
export function explainError(error: unknown, places: readonly PathOption[] = []): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
  if (error instanceof ConfigError || typeof code !== 'string') return message;
  const path = (error as NodeJS.ErrnoException).path;
  if (permissionCodes.has(code) && path !== undefined) {
    const owner = places.find((place) => path === place.path || path.startsWith(`${place.path}${sep}`));
    const why = code === 'EROFS' ? 'the file system is read-only' : 'permission denied';
    const hint =
      owner === undefined ? '' : ` (set by ${owner.option}: choose a path this user may write, or fix its owner)`;
    return `${code}: cannot ${(error as NodeJS.ErrnoException).syscall ?? 'use'} ${path}: ${why}${hint}`;
  }
  // Node's file errors read "EACCES: permission denied, …": the code once is enough.
  return message.startsWith(`${code}:`) ? message : `${code}: ${message}`;
}
