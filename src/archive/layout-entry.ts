/**
 * @module archive/layout-entry
 * One entry of a layout being read, whatever carries it (a tar stream, a
 * directory): a path, a type, and for files a size and a body that must be
 * read to its end (or drained) before the next entry is asked for.
 */

export type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export interface LayoutEntry {
  /** As the archive names it, before any check. */
  path: string;
  type: EntryType;
  size: number;
  body: AsyncIterable<Uint8Array>;
  /** For a symlink: where it points, as the archive says (never followed on disk). */
  linkTarget?: string;
}

/** Reads and discards the rest of a body. */
export async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const chunk of body) void chunk;
}
