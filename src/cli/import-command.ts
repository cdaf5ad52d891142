/**
 * @module cli/import-command
 * `wharf import <file | dir | ->`: reads an OCI image layout (tar, tar.gz, a
 * directory, or a tar on stdin) or a `docker save` tar into the store, all or nothing. It writes the
 * store, so it takes the data directory's lock: it refuses to run while
 * `wharf serve` holds it (serve would not see rows it has cached, and its
 * start-up clean of tmp/ would remove an import's files in progress).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { importArchive } from '../archive/import-archive.js';
import type { ImportLayoutResult } from '../archive/import-layout.js';
import { readDirEntries } from '../archive/dir-entries.js';
import { readTarEntries } from '../archive/tar-entries.js';
import type { LayoutEntry } from '../archive/layout-entry.js';
import { OciError } from '../oci/errors.js';
import { parseRepoName, type RepoName } from '../oci/reference.js';
import { compileNamePattern, matchesAny } from '../registry/auth/name-pattern.js';
import { LocalStore } from '../store/local-store.js';
import { loadConfig } from './config.js';
import { lockDataDir } from './data-dir-lock.js';
import { formatBytes } from './format-bytes.js';
import { createProgressView, progressMode } from './transfer-progress.js';

export interface ImportFlags {
  config?: string;
  data?: string;
  name?: string;
  /** `--local pattern`: plain layout names that stay local (as for serve). */
  local?: string[];
  quiet?: boolean;
  json?: boolean;
}

export async function runImport(
  source: string,
  flags: ImportFlags,
  env: Record<string, string | undefined>,
): Promise<void> {
  const config = loadConfig({
    file: flags.config ?? env.WHARF_CONFIG,
    env,
    flags: { data: flags.data },
    localFlags: flags.local ?? [],
  });
  const name = flags.name === undefined ? undefined : nameFlag(flags.name);
  const localPatterns = config.local.map(compileNamePattern);
  const { entries, size } = await openSource(source);
  const lock = await lockDataDir(config.dataDir);
  const view = createProgressView(
    progressMode(flags, process.stderr),
    flags.json === true ? process.stdout : process.stderr,
  );
  if (size !== undefined) view.setTotal(size);
  const startedAt = Date.now();
  try {
    const store = await LocalStore.open(config.dataDir);
    try {
      // A sparse index (exported after preload --platform) is imported as sparse: see archive/write-image-tree.ts.
      const result = await importArchive(entries, store.startImport({ allowSparseIndex: true }), {
        name,
        isLocal: (repo) => matchesAny(localPatterns, repo),
        label: source,
        onEvent: view.onEvent,
      });
      view.stop();
      if (flags.quiet !== true && flags.json !== true) {
        process.stdout.write(`${describe(result, (Date.now() - startedAt) / 1000)}\n`);
      }
    } finally {
      store.close();
    }
  } finally {
    view.stop();
    await lock.release();
  }
}

async function openSource(source: string): Promise<{ entries: AsyncIterable<LayoutEntry>; size?: number }> {
  if (source === '-') return { entries: readTarEntries(process.stdin) };
  const info = await stat(source);
  if (info.isDirectory()) return { entries: readDirEntries(source) };
  return { entries: readTarEntries(createReadStream(source, { highWaterMark: 1024 * 1024 })), size: info.size };
}

function describe(result: ImportLayoutResult, seconds: number): string {
  const lines = result.images.map((image) => `imported ${image.ref} (${image.digest})`);
  const rate = formatBytes(result.bytesWritten / Math.max(seconds, 0.001));
  lines.push(
    `${result.images.length} image${result.images.length === 1 ? '' : 's'}, ${result.blobsWritten} blobs written, ` +
      `${formatBytes(result.bytesWritten)} in ${seconds.toFixed(1)} s (${rate}/s)`,
  );
  return lines.join('\n');
}

/** `--name`, refused in one line that names the value and the flag (the CLI prints no detail). */
function nameFlag(value: string): RepoName {
  const name = parseRepoName(value);
  if (name === undefined) {
    throw new OciError(
      'NAME_INVALID',
      `--name ${JSON.stringify(value)} is not a repository name (lowercase a-z, 0-9, separators . _ - and /)`,
    );
  }
  return name;
}
