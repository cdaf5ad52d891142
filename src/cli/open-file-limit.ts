/**
 * @module cli/open-file-limit
 * The default connection cap, derived from the process's open-file limit, so
 * that a flood of connections is refused before it exhausts descriptors (at
 * which point the server could accept nothing and open no blob file).
 */
import { readFileSync } from 'node:fs';

/**
 * What one connection may hold at worst: its socket, a blob or temp file it
 * reads or writes, and the upstream socket of a fill it started.
 */
const descriptorsPerConnection = 3;
/** Kept back for the index (SQLite WAL and shm), the listening socket, logs, and blob reads shared by fills. */
const reservedDescriptors = 128;
/** Past this, memory per idle connection (buffers, parser) matters more than descriptors. */
const maxDefaultConnections = 10_000;
const minDefaultConnections = 64;
/** The soft limit most systems start processes with, assumed where /proc cannot be read. */
const fallbackOpenFiles = 1024;

/**
 * The soft "Max open files" of this process from /proc/self/limits (Node raises
 * its soft limit to the hard one at start, so this is what it really has), or
 * undefined where /proc is missing or says "unlimited".
 */
export function readOpenFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const match = /^Max open files\s+(\d+)/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** ⌊(open files − 128) / 3⌋, kept within 64…10,000: 298 for 1,024 files, 6,624 for 20,000. */
export function defaultMaxConnections(openFiles = readOpenFileLimit() ?? fallbackOpenFiles): number {
  const fit = Math.floor((openFiles - reservedDescriptors) / descriptorsPerConnection);
  return Math.min(maxDefaultConnections, Math.max(minDefaultConnections, fit));
}
