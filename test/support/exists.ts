/**
 * @module test/support/exists
 * Whether a path is there (a file, a directory, anything `stat` finds), for tests that check what a
 * store left on disk.
 */
import { stat } from 'node:fs/promises';

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
