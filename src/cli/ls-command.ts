/**
 * @module cli/ls-command
 * `wharf ls [pattern] [--json]`: what the store holds, one line per image
 * (repository:tag or @digest, digest, index/manifest, platforms, size, where
 * the tag came from: pushed, imported, preloaded, fetched). The pattern is a
 * repository pattern as `local:` takes them (`docker.io/**`, `team/*`). Opens
 * the store read-only, takes no lock: it runs beside `wharf serve`.
 */
import { compileNamePattern, namePatternSyntax } from '../registry/auth/name-pattern.js';
import { indexExists } from '../store/database.js';
import type { ImageListing } from '../store/image-listing.js';
import { LocalStore } from '../store/local-store.js';
import { loadConfig } from './config.js';
import { formatBytes } from './format-bytes.js';

export interface LsFlags {
  config?: string;
  data?: string;
  json?: boolean;
}

export async function runLs(
  pattern: string | undefined,
  flags: LsFlags,
  env: Record<string, string | undefined>,
): Promise<void> {
  const config = loadConfig({ file: flags.config ?? env.WHARF_CONFIG, env, flags: { data: flags.data } });
  if (pattern !== undefined && !namePatternSyntax.test(pattern)) {
    throw new Error(`${JSON.stringify(pattern)} is not a repository pattern (names, '*' and '**')`);
  }
  if (!indexExists(config.dataDir)) throw new Error(`no store in ${config.dataDir}`);
  const store = LocalStore.openReadOnly(config.dataDir);
  try {
    const images = await store.listImages(pattern === undefined ? undefined : compileNamePattern(pattern));
    if (flags.json === true) {
      for (const image of images) process.stdout.write(`${JSON.stringify(image)}\n`);
      return;
    }
    process.stdout.write(formatTable(images));
  } finally {
    store.close();
  }
}

function formatTable(images: readonly ImageListing[]): string {
  const rows = [['IMAGE', 'DIGEST', 'KIND', 'PLATFORMS', 'SIZE', 'SOURCE', 'LAST PULLED']];
  for (const image of images) {
    const missing = image.missingPlatforms.length === 0 ? '' : ` (+${image.missingPlatforms.length} not here)`;
    rows.push([
      image.tag === undefined ? `${image.repository}@${image.digest.slice(0, 19)}` : `${image.repository}:${image.tag}`,
      image.digest.slice(0, 19),
      image.kind,
      `${image.platforms.join(',') || '-'}${missing}`,
      formatBytes(image.size),
      image.source ?? '-',
      formatPulled(image.lastPulledAt),
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** UTC to the minute (the times are batched, up to 30 s late); '-' for never. */
function formatPulled(at: number | undefined): string {
  return at === undefined ? '-' : `${new Date(at).toISOString().slice(0, 16).replace('T', ' ')}Z`;
}
