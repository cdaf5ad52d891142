/**
 * @module test/support/open-descriptors
 * The files this process holds open under a directory (Linux: /proc/self/fd), so a test can check
 * that a store closed every descriptor it opened. A descriptor on a file removed since shows as
 * "<path> (deleted)", still under the directory.
 */
import { readdir, readlink } from 'node:fs/promises';

export async function descriptorsUnder(dir: string): Promise<string[]> {
  const targets = await Promise.all(
    (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return targets.filter((target) => target.startsWith(`${dir}/`)).sort();
}
