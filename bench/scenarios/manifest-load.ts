/**
 * @module bench/scenarios/manifest-load
 * Scenario 4: manifest GET (wrk --latency) and HEAD (ab -i -k), by digest and by tag, 50
 * connections, fixed duration, on the warm mirrors. wharf serves a cached tag until its TTL (5 min);
 * the distribution proxy asks the upstream on every tag request, which is what this shows.
 */
import { log, manifestUrl, mirrorKinds, mirrorName, type BenchContext, type MirrorKind } from '../context.js';
import { manifestAccept } from '../images.js';
import { abHead, wrk, type LoadResult } from '../load-tools.js';
import { ratio, samples, type Row } from '../report.js';
import type { Server } from '../servers.js';

interface Variant {
  method: 'GET' | 'HEAD';
  by: 'digest' | 'tag';
}

const variants: readonly Variant[] = [
  { method: 'GET', by: 'digest' },
  { method: 'GET', by: 'tag' },
  { method: 'HEAD', by: 'digest' },
  { method: 'HEAD', by: 'tag' },
];

export async function runManifestLoad(ctx: BenchContext, mirrors: Record<MirrorKind, Server>): Promise<Row[]> {
  const image = ctx.images.pull;
  const headers = { Accept: manifestAccept };
  const urlOf = (kind: MirrorKind, v: Variant): string =>
    manifestUrl(mirrors[kind], mirrorName(kind, image), v.by === 'digest' ? image.manifest.digest : image.tag);

  // Both mirrors hold the manifest and the tag already (scenario 1 pulled it); check the answers.
  for (const kind of mirrorKinds) {
    for (const v of variants) {
      const response = await fetch(urlOf(kind, v), { method: v.method, headers, signal: AbortSignal.timeout(10_000) });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`${kind}: ${v.method} manifest by ${v.by}: ${response.status}`);
    }
  }

  const rows: Row[] = [];
  for (const v of variants) {
    const results: Record<MirrorKind, LoadResult[]> = { wharf: [], distribution: [] };
    for (let run = 0; run < ctx.config.runs; run++) {
      const order = run % 2 === 0 ? mirrorKinds : [...mirrorKinds].reverse();
      for (const kind of order) {
        const load = {
          url: urlOf(kind, v),
          connections: ctx.config.manifestConnections,
          seconds: ctx.config.manifestSeconds,
          headers,
        };
        const result = v.method === 'GET' ? await wrk({ ...load, threads: 2 }) : await abHead(load);
        if (result.errors > 0) {
          ctx.notes.push(
            `Scenario 4: ${kind} ${v.method} by ${v.by}, run ${run + 1}: ${result.errors} errors (non-2xx or socket) in ${result.requests} requests.`,
          );
        }
        results[kind].push(result);
      }
      log(
        `manifest ${v.method} by ${v.by} run ${run + 1}: wharf ${results.wharf.at(-1)?.reqPerSec.toFixed(0)} req/s, ` +
          `distribution ${results.distribution.at(-1)?.reqPerSec.toFixed(0)} req/s`,
      );
    }
    const label = `4. manifest ${v.method} by ${v.by}, ${ctx.config.manifestConnections} conn, ${ctx.config.manifestSeconds} s (${v.method === 'GET' ? 'wrk' : 'ab'})`;
    const rps = (k: MirrorKind) =>
      samples(
        results[k].map((r) => r.reqPerSec),
        'req/s',
        0,
      );
    const lat = (k: MirrorKind, p: 'p50Ms' | 'p99Ms') =>
      samples(
        results[k].map((r) => r[p]),
        'ms',
        v.method === 'GET' ? 2 : 0,
      );
    rows.push({
      scenario: `${label}: req/s`,
      wharf: rps('wharf'),
      distribution: rps('distribution'),
      target: '≥ 10× distribution',
      met: ratio(rps('wharf'), rps('distribution')) >= 10,
    });
    for (const p of ['p50Ms', 'p99Ms'] as const) {
      rows.push({
        scenario: `${label}: ${p === 'p50Ms' ? 'p50' : 'p99'} latency`,
        wharf: lat('wharf', p),
        distribution: lat('distribution', p),
        target: '—',
      });
    }
  }
  return rows;
}
