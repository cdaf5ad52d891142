/**
 * @module bench/scenarios/cold-warm-pull
 * Scenarios 1 and 2, and the cold half of 3: per run, a fresh mirror of each kind (new data dir),
 * a cold skopeo pull of the ~200 MB image through it, the same pull straight from the upstream,
 * a warm (second) pull, then a cold curl GET of the 200 MB blob. The last run's mirrors are
 * returned warm for scenarios 3 and 4.
 */
import { join } from 'node:path';
import {
  blobUrl,
  log,
  mirrorKinds,
  mirrorName,
  rotate,
  startMirror,
  type BenchContext,
  type MirrorKind,
} from '../context.js';
import { curlGet, skopeoPull } from '../load-tools.js';
import { makeTempDir, removeTempDir } from '../processes.js';
import { ratio, samples, type Row } from '../report.js';
import type { Server } from '../servers.js';

type Target = MirrorKind | 'direct';

export interface ColdWarmResult {
  rows: Row[];
  /** The last run's mirrors, holding the pull image and the scenario-3 blob. */
  warm: Record<MirrorKind, Server>;
}

async function timedPull(source: string): Promise<number> {
  const dir = await makeTempDir('pull');
  try {
    return await skopeoPull(source, join(dir, 'out'));
  } finally {
    await removeTempDir(dir);
  }
}

export async function runColdWarmPulls(ctx: BenchContext): Promise<ColdWarmResult> {
  const { pull, blob } = ctx.images;
  const cold: Record<Target, number[]> = { wharf: [], distribution: [], direct: [] };
  const warmPull: Record<Target, number[]> = { wharf: [], distribution: [], direct: [] };
  const coldBlob: Record<Target, number[]> = { wharf: [], distribution: [], direct: [] };
  const layer = blob.layers[0];
  if (layer === undefined) throw new Error('blob image has no layer');
  let mirrors: Record<MirrorKind, Server> | undefined;

  for (let run = 0; run < ctx.config.runs; run++) {
    if (mirrors !== undefined) {
      for (const kind of mirrorKinds) await mirrors[kind].close({ removeData: true });
    }
    mirrors = { wharf: await startMirror(ctx, 'wharf'), distribution: await startMirror(ctx, 'distribution') };
    const current = mirrors;
    const sourceOf = (t: Target): string =>
      `${t === 'direct' ? `${ctx.upstream.host}/${pull.name}` : `${current[t].host}/${mirrorName(t, pull)}`}:${pull.tag}`;
    const order = rotate<Target>(['direct', 'wharf', 'distribution'], run);
    for (const t of order) cold[t].push(await timedPull(sourceOf(t)));
    for (const t of order) warmPull[t].push(await timedPull(sourceOf(t)));
    for (const t of order) {
      const server = t === 'direct' ? ctx.upstream : current[t];
      const name = t === 'direct' ? blob.name : mirrorName(t, blob);
      const got = await curlGet(blobUrl(server, name, layer.digest));
      if (got.status !== 200 || got.bytes !== layer.size) {
        throw new Error(`cold blob GET via ${t}: status ${got.status}, ${got.bytes} of ${layer.size} bytes`);
      }
      coldBlob[t].push(got.bytes / got.seconds / 1e6);
    }
    log(
      `run ${run + 1}/${ctx.config.runs}: cold pull direct ${cold.direct.at(-1)?.toFixed(2)} s, ` +
        `wharf ${cold.wharf.at(-1)?.toFixed(2)} s, distribution ${cold.distribution.at(-1)?.toFixed(2)} s; ` +
        `cold blob GET wharf ${coldBlob.wharf.at(-1)?.toFixed(0)} MB/s, distribution ${coldBlob.distribution.at(-1)?.toFixed(0)} MB/s`,
    );
  }
  if (mirrors === undefined) throw new Error('no runs');

  const mb = Math.round((pull.layers.reduce((s, l) => s + l.size, 0) + pull.config.size) / 1e6);
  const wharfCold = samples(cold.wharf, 's', 2);
  const distCold = samples(cold.distribution, 's', 2);
  const direct = samples(cold.direct, 's', 2);
  const overhead = (values: number[]): number[] => values.map((v, i) => v / (cold.direct[i] ?? Number.NaN));
  const wharfOverhead = samples(overhead(cold.wharf), '×', 2);
  const wharfColdBlob = samples(coldBlob.wharf, 'MB/s', 0);
  const distColdBlob = samples(coldBlob.distribution, 'MB/s', 0);
  const rows: Row[] = [
    {
      scenario: `1. cold pull, ${mb} MB image, skopeo (s)`,
      wharf: wharfCold,
      distribution: distCold,
      reference: { label: 'direct from upstream', samples: direct },
      target: '≤ 1.05× direct',
      met: ratio(wharfCold, direct) <= 1.05,
    },
    {
      scenario: '1. cold pull overhead, mirror / direct (per run)',
      wharf: wharfOverhead,
      distribution: samples(overhead(cold.distribution), '×', 2),
      target: '≤ 1.05× (distribution ref. 1.25×)',
      met: ratio(wharfOverhead, samples([1], '', 0)) <= 1.05,
    },
    {
      scenario: `2. warm pull, same image, skopeo (s)`,
      wharf: samples(warmPull.wharf, 's', 2),
      distribution: samples(warmPull.distribution, 's', 2),
      reference: { label: 'direct from upstream', samples: samples(warmPull.direct, 's', 2) },
      target: '— (no target; skopeo caps near 200 MB/s)',
    },
    {
      scenario: `3. cold blob GET, ${Math.round(layer.size / 1e6)} MB, 1 client (curl, MB/s)`,
      wharf: wharfColdBlob,
      distribution: distColdBlob,
      reference: { label: 'direct from upstream', samples: samples(coldBlob.direct, 'MB/s', 0) },
      target: '≥ 1.3× distribution',
      met: ratio(wharfColdBlob, distColdBlob) >= 1.3,
    },
  ];
  return { rows, warm: mirrors };
}
