/**
 * @module bench/scenarios/peak-rss
 * Scenario 6: twenty curl clients GET one 1 GiB blob at once; the server's peak RSS (VmHWM from
 * /proc/<pid>/status) is read when they are done. Cold: a fresh mirror. Warm: the same data dir
 * after a restart, so the peak belongs to the warm phase alone.
 */
import { readFile } from 'node:fs/promises';
import { blobUrl, log, mirrorKinds, mirrorName, startMirror, type BenchContext, type MirrorKind } from '../context.js';
import { curlGet } from '../load-tools.js';
import { samples, type Row } from '../report.js';
import type { Server } from '../servers.js';
import { settledLog, upstreamBlobRequests } from './concurrent-pulls.js';

export async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

async function swarm(ctx: BenchContext, kind: MirrorKind, server: Server): Promise<{ rss: number; seconds: number }> {
  const image = ctx.images.big;
  const layer = image.layers[0];
  if (layer === undefined) throw new Error('big image has no layer');
  const url = blobUrl(server, mirrorName(kind, image), layer.digest);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: ctx.config.rssClients }, () => curlGet(url)));
  const seconds = (performance.now() - started) / 1000;
  for (const r of results) {
    if (r.status !== 200 || r.bytes !== layer.size) throw new Error(`${kind}: 1 GiB GET ${r.status}, ${r.bytes} bytes`);
  }
  return { rss: await peakRssMiB(server.pid), seconds };
}

export async function runPeakRss(ctx: BenchContext): Promise<Row[]> {
  const rss = {
    cold: { wharf: [] as number[], distribution: [] as number[] },
    warm: { wharf: [] as number[], distribution: [] as number[] },
  };
  const secs = {
    cold: { wharf: [] as number[], distribution: [] as number[] },
    warm: { wharf: [] as number[], distribution: [] as number[] },
  };
  const idle: Record<MirrorKind, number[]> = { wharf: [], distribution: [] };

  for (let run = 0; run < ctx.config.rssRuns; run++) {
    for (const kind of mirrorKinds) {
      const cold = await startMirror(ctx, kind);
      let warm: Server | undefined;
      try {
        idle[kind].push(await peakRssMiB(cold.pid));
        const from = ctx.upstream.output().length;
        const c = await swarm(ctx, kind, cold);
        rss.cold[kind].push(c.rss);
        secs.cold[kind].push(c.seconds);
        const layer = ctx.images.big.layers[0]?.digest ?? '';
        const fetched = upstreamBlobRequests(await settledLog(ctx.upstream, from), ctx.images.big).get(layer);
        if (run === 0) {
          ctx.notes.push(
            `Scenario 6, cold, ${kind}: the big blob was fetched from the upstream ${fetched?.get ?? '?'} time(s) (GET) for ${ctx.config.rssClients} clients.`,
          );
        }
        await cold.close();
        warm = await startMirror(ctx, kind, cold);
        const w = await swarm(ctx, kind, warm);
        rss.warm[kind].push(w.rss);
        secs.warm[kind].push(w.seconds);
      } finally {
        await cold.close({ removeData: warm === undefined });
        await warm?.close({ removeData: true });
      }
      log(
        `peak RSS run ${run + 1} ${kind}: cold ${rss.cold[kind].at(-1)?.toFixed(0)} MiB (${secs.cold[kind].at(-1)?.toFixed(1)} s), ` +
          `warm ${rss.warm[kind].at(-1)?.toFixed(0)} MiB (${secs.warm[kind].at(-1)?.toFixed(1)} s)`,
      );
    }
  }
  const gib = (ctx.config.rssBlobBytes / 1024 ** 3).toFixed(ctx.config.rssBlobBytes % 1024 ** 3 === 0 ? 0 : 2);
  const n = ctx.config.rssClients;
  const rows: Row[] = [];
  for (const phase of ['cold', 'warm'] as const) {
    rows.push({
      scenario: `6. peak RSS, ${n} clients GET a ${gib} GiB blob, ${phase} (VmHWM, MiB)`,
      wharf: samples(rss[phase].wharf, 'MiB', 0),
      distribution: samples(rss[phase].distribution, 'MiB', 0),
      target: '< 150 MB (every run)',
      // 150 MB = 143 MiB
      met: Math.max(...rss[phase].wharf) * 1024 * 1024 < 150e6,
    });
    rows.push({
      scenario: `6. ${n} clients GET a ${gib} GiB blob, ${phase}: wall time (s)`,
      wharf: samples(secs[phase].wharf, 's', 1),
      distribution: samples(secs[phase].distribution, 's', 1),
      target: '—',
    });
  }
  rows.push({
    scenario: '6. RSS right after start, before any request (MiB)',
    wharf: samples(idle.wharf, 'MiB', 0),
    distribution: samples(idle.distribution, 'MiB', 0),
    target: '—',
  });
  return rows;
}
