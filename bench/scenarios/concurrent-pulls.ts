/**
 * @module bench/scenarios/concurrent-pulls
 * Scenario 5: twenty clients pull one image at the same moment from a cold mirror; the upstream
 * distribution's access log says how often each blob was fetched from it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { accessLines } from '../../test/support/access-log.js';
import { log, mirrorKinds, mirrorName, startMirror, type BenchContext, type MirrorKind } from '../context.js';
import type { BenchImage } from '../images.js';
import { withDeadline } from '../processes.js';
import { pullImage } from '../pull-client.js';
import { samples, type Row } from '../report.js';
import type { Server } from '../servers.js';

/** Upstream GETs (and HEADs) per blob of `image` in the access log text since a run began. */
export function upstreamBlobRequests(logText: string, image: BenchImage): Map<string, { get: number; head: number }> {
  const counts = new Map<string, { get: number; head: number }>();
  for (const blob of [image.config, ...image.layers]) counts.set(blob.digest, { get: 0, head: 0 });
  for (const line of accessLines(logText)) {
    const path = line.path.split('?')[0] ?? '';
    const match = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
    if (match === null || match[1] !== image.name) continue;
    const entry = counts.get(match[2] ?? '');
    if (entry === undefined) continue;
    if (line.method === 'GET') entry.get++;
    else if (line.method === 'HEAD') entry.head++;
  }
  return counts;
}

/** Upstream requests for manifests of `image` (any reference) in the access log text. */
export function upstreamManifestRequests(logText: string, image: BenchImage): number {
  const prefix = `/v2/${image.name}/manifests/`;
  return accessLines(logText).filter((l) => l.path.startsWith(prefix)).length;
}

/** Waits until the upstream has logged the requests in flight (it logs when a response ends). */
export async function settledLog(upstream: Server, from: number): Promise<string> {
  await sleep(1_000);
  return upstream.output().slice(from);
}

export async function runConcurrentPulls(ctx: BenchContext): Promise<Row[]> {
  const image = ctx.images.swarm;
  const clients = ctx.config.swarmClients;
  const maxPerBlob: Record<MirrorKind, number[]> = { wharf: [], distribution: [] };
  const totalGets: Record<MirrorKind, number[]> = { wharf: [], distribution: [] };
  const seconds: Record<MirrorKind, number[]> = { wharf: [], distribution: [] };

  for (let run = 0; run < ctx.config.runs; run++) {
    for (const kind of run % 2 === 0 ? mirrorKinds : [...mirrorKinds].reverse()) {
      const mirror = await startMirror(ctx, kind);
      const agent = new Agent({ connections: null });
      try {
        const from = ctx.upstream.output().length;
        const started = performance.now();
        const name = mirrorName(kind, image);
        await withDeadline(
          Promise.all(Array.from({ length: clients }, () => pullImage(mirror.url, name, image.tag, agent))),
          600_000,
          `${clients} concurrent pulls from ${kind}`,
        );
        seconds[kind].push((performance.now() - started) / 1000);
        const logText = await settledLog(ctx.upstream, from);
        const counts = upstreamBlobRequests(logText, image);
        const gets = [...counts.values()].map((c) => c.get);
        maxPerBlob[kind].push(Math.max(...gets));
        totalGets[kind].push(gets.reduce((a, b) => a + b, 0));
        if (run === ctx.config.runs - 1) {
          const detail = [...counts.values()].map((c) => `${c.get} GET/${c.head} HEAD`).join(', ');
          ctx.notes.push(
            `Scenario 5, last run, ${kind}: upstream requests per blob (config, then layers): ${detail}; ` +
              `manifest requests (GET and HEAD) for the ${clients} tag pulls: ${upstreamManifestRequests(logText, image)}.`,
          );
        }
      } finally {
        await agent.close();
        await mirror.close({ removeData: true });
      }
    }
    log(
      `concurrent pulls run ${run + 1}: upstream GETs per blob (max) wharf ${maxPerBlob.wharf.at(-1)}, ` +
        `distribution ${maxPerBlob.distribution.at(-1)}`,
    );
  }
  const blobs = image.layers.length + 1;
  const mb = Math.round(image.layers.reduce((s, l) => s + l.size, 0) / 1e6);
  return [
    {
      scenario: `5. ${clients} concurrent cold pulls (${mb} MB, ${blobs} blobs): upstream GETs of the most-fetched blob`,
      wharf: samples(maxPerBlob.wharf, 'GETs', 0),
      distribution: samples(maxPerBlob.distribution, 'GETs', 0),
      target: 'exactly 1 per blob',
      met: maxPerBlob.wharf.every((n) => n === 1) && totalGets.wharf.every((n) => n === blobs),
    },
    {
      scenario: `5. ${clients} concurrent cold pulls: upstream blob GETs in total (${blobs} blobs)`,
      wharf: samples(totalGets.wharf, 'GETs', 0),
      distribution: samples(totalGets.distribution, 'GETs', 0),
      target: `${blobs} (one per blob)`,
      met: totalGets.wharf.every((n) => n === blobs),
    },
    {
      scenario: `5. ${clients} concurrent cold pulls: wall time until all done (s)`,
      wharf: samples(seconds.wharf, 's', 2),
      distribution: samples(seconds.distribution, 's', 2),
      target: '—',
    },
  ];
}
