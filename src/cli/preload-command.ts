/**
 * @module cli/preload-command
 * `wharf preload <ref…> | --file images.txt [--platform os/arch[/variant],…]`:
 * copies images from their upstreams into the store through the transfer
 * engine (every byte verified while it streams), all platforms by default.
 * With --platform the index is kept byte for byte (a sparse index: its other
 * platforms stay listed and are fetched on demand when online). Tags carry
 * source 'preloaded': the mirror never revalidates them away, eviction never
 * takes them. All or nothing, like import; it writes the store, so it takes
 * the data directory's lock and refuses while `wharf serve` runs.
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import type { Platform } from '../oci/descriptor.js';
import { OciError } from '../oci/errors.js';
import { parseImageRef, type ImageRef } from '../oci/image-ref.js';
import { UpstreamReader } from '../proxy/upstream-reader.js';
import { LocalStore } from '../store/local-store.js';
import { copyImages, type CopyRequest } from '../transfer/copy-images.js';
import { loadConfig } from './config.js';
import { parsePlatforms, platformMatches } from './client/platforms.js';
import { lockDataDir } from './data-dir-lock.js';
import { formatBytes } from './format-bytes.js';
import { createProgressView, progressMode } from './transfer-progress.js';
import { createUpstreamRouter } from './upstream-router.js';

export interface PreloadFlags {
  config?: string;
  data?: string;
  upstream?: string[];
  mirrorUpstream?: string[];
  defaultUpstream?: string;
  local?: string[];
  offline?: boolean;
  file?: string;
  platform?: string;
  /** Also the referrers of every manifest fetched. */
  referrers?: boolean;
  quiet?: boolean;
  json?: boolean;
}

export async function runPreload(
  args: string[],
  flags: PreloadFlags,
  env: Record<string, string | undefined>,
): Promise<void> {
  const config = loadConfig({
    file: flags.config ?? env.WHARF_CONFIG,
    env,
    flags: { data: flags.data, defaultUpstream: flags.defaultUpstream },
    upstreamFlags: flags.upstream ?? [],
    mirrorUpstreamFlags: flags.mirrorUpstream ?? [],
    localFlags: flags.local ?? [],
  });
  if (flags.offline === true) throw new Error('preload fetches from upstreams: --offline does not apply');
  // An air-gapped site's own config (offline: true, WHARF_OFFLINE) means no upstream is dialled, by any command.
  if (config.offline) {
    throw new Error('preload fetches from upstreams, and this config is offline (offline: true or WHARF_OFFLINE)');
  }
  const refs = [...args, ...(flags.file === undefined ? [] : parseImageList(await readFile(flags.file, 'utf8')))];
  if (refs.length === 0) throw new Error('name at least one image (name:tag or name@digest), or --file');
  const platforms = flags.platform === undefined ? undefined : parsePlatforms(flags.platform);
  const logger = pino({ level: 'warn' }, process.stderr);
  const { router, clients } = createUpstreamRouter(config.upstreams, config.defaultUpstream, config.local, logger);
  const reader = new UpstreamReader(router);
  // One image named twice (a repeated line, `alpine:3` beside `docker.io/library/alpine:3`) is fetched and
  // listed once: the first spelling is kept.
  const requests = new Map<string, CopyRequest>();
  for (const value of refs) {
    const from = requireRef(value);
    const to = { name: reader.mirrorRoute(from.name).canonical, reference: from.reference };
    // A tag has no ':' and a digest has one: name and reference joined by a space are unambiguous.
    const key = `${to.name} ${to.reference}`;
    if (!requests.has(key)) requests.set(key, { from, to });
  }
  const lock = await lockDataDir(config.dataDir);
  const view = createProgressView(
    progressMode(flags, process.stderr),
    flags.json === true ? process.stdout : process.stderr,
  );
  try {
    const store = await LocalStore.open(config.dataDir);
    try {
      const batch = store.startImport({ source: 'preloaded', allowSparseIndex: platforms !== undefined });
      const summary = await copyImages(reader, batch, [...requests.values()], {
        onEvent: view.onEvent,
        referrers: flags.referrers === true,
        ...(platforms === undefined
          ? {}
          : { platforms: (p: Platform) => platforms.some((want) => platformMatches(want, p)) }),
      });
      view.stop();
      if (flags.quiet !== true && flags.json !== true) {
        for (const image of summary.images) process.stdout.write(`preloaded ${image.ref} (${image.digest})\n`);
        process.stdout.write(
          `${summary.images.length} images, ${summary.blobsSent} blobs fetched (${formatBytes(summary.bytes)}), ${summary.blobsSkipped} already here\n`,
        );
      }
    } finally {
      store.close();
    }
  } finally {
    view.stop();
    await lock.release();
    await Promise.all(clients.map(({ client }) => client.close()));
  }
}

/** One reference a line; blank lines and `#` comments are skipped. */
export function parseImageList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
}

function requireRef(value: string): ImageRef {
  const ref = parseImageRef(value);
  if (ref === undefined) {
    throw new OciError('NAME_INVALID', `${JSON.stringify(value)} is not name:tag or name@digest`);
  }
  return ref;
}
