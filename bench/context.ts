/**
 * @module bench/context
 * What every scenario is handed: the config, the upstream and its images, and how to start a
 * fresh mirror of each kind. wharf reaches a mirrored repository by the path prefix
 * `registry.example.test/<repo>`; the distribution proxy mirrors one upstream under plain names.
 */
import { dirname } from 'node:path';
import type { BenchConfig } from './config.js';
import type { BenchImage } from './images.js';
import { mirroredHost, startDistribution, startWharf, type Server } from './servers.js';

export type MirrorKind = 'wharf' | 'distribution';
export const mirrorKinds: readonly MirrorKind[] = ['wharf', 'distribution'];

export interface BenchImages {
  /** ~200 MB in four layers: scenarios 1 and 2. */
  pull: BenchImage;
  /** One ~200 MB layer: scenario 3 (its layer is also the file nginx serves). */
  blob: BenchImage;
  /** Four smaller layers pulled by 20 clients at once: scenario 5. */
  swarm: BenchImage;
  /** One 1 GiB layer: scenario 6. */
  big: BenchImage;
}

export interface BenchContext {
  config: BenchConfig;
  /** Snapshot of dist/ taken at the start. */
  distDir: string;
  upstream: Server;
  images: BenchImages;
  /** Notes for results.md about anything measured differently. */
  notes: string[];
}

/** A fresh mirror (new data dir) or, with `reuse`, a restart over the same data. */
export async function startMirror(
  ctx: BenchContext,
  kind: MirrorKind,
  reuse?: Server,
  /** Another upstream than ctx.upstream (the shaped relay), mirrored as docker.io too by wharf. */
  via?: Server,
): Promise<Server> {
  const upstreamUrl = (via ?? ctx.upstream).url;
  if (kind === 'wharf') {
    return startWharf({
      distDir: ctx.distDir,
      upstreamUrl,
      dataDir: reuse?.dataDir,
      ...(via === undefined ? {} : { asDockerHub: true }),
    });
  }
  return startDistribution({
    name: 'distribution-proxy',
    proxyOf: upstreamUrl,
    workDir: reuse === undefined ? undefined : dirname(reuse.dataDir),
  });
}

/** The repository name a client uses on this mirror. */
export function mirrorName(kind: MirrorKind, image: BenchImage): string {
  return kind === 'wharf' ? `${mirroredHost}/${image.name}` : image.name;
}

export function blobUrl(server: Server, name: string, digest: string): string {
  return `${server.url}/v2/${name}/blobs/${digest}`;
}

export function manifestUrl(server: Server, name: string, reference: string): string {
  return `${server.url}/v2/${name}/manifests/${reference}`;
}

/** Rotates the order of runs so no server always goes first (or last) in a run. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export function log(message: string): void {
  const time = new Date().toISOString().slice(11, 19);
  console.log(`[bench ${time}] ${message}`);
}
