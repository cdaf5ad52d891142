/**
 * @module bench/scenarios/blob-throughput
 * Scenario 3, cached: wrk GETs of the same ~200 MB blob for a fixed time, 1 connection and 16,
 * against warm wharf, warm distribution and nginx serving the identical file (sendfile on).
 */
import { blobUrl, log, mirrorName, rotate, type BenchContext, type MirrorKind } from '../context.js';
import { curlGet, wrk } from '../load-tools.js';
import { ratio, samples, type Row } from '../report.js';
import type { Server } from '../servers.js';

type Target = MirrorKind | 'nginx';

export async function runBlobThroughput(
  ctx: BenchContext,
  mirrors: Record<MirrorKind, Server>,
  nginx: Server,
  nginxPath: string,
): Promise<Row[]> {
  const layer = ctx.images.blob.layers[0];
  if (layer === undefined) throw new Error('blob image has no layer');
  const urlOf = (t: Target): string =>
    t === 'nginx' ? `${nginx.url}${nginxPath}` : blobUrl(mirrors[t], mirrorName(t, ctx.images.blob), layer.digest);

  // Every server must already hold the blob (the cold GET of scenario 3 filled the mirrors).
  for (const t of ['wharf', 'distribution', 'nginx'] as const) {
    const got = await curlGet(urlOf(t));
    if (got.status !== 200 || got.bytes !== layer.size)
      throw new Error(`${t}: blob GET ${got.status}, ${got.bytes} bytes`);
  }

  const rows: Row[] = [];
  for (const connections of [1, 16]) {
    const mbps: Record<Target, number[]> = { wharf: [], distribution: [], nginx: [] };
    for (let run = 0; run < ctx.config.runs; run++) {
      for (const t of rotate<Target>(['wharf', 'distribution', 'nginx'], run)) {
        const result = await wrk({
          url: urlOf(t),
          connections,
          threads: Math.min(connections, 2),
          seconds: ctx.config.blobSeconds,
        });
        if (result.errors > 0) throw new Error(`${t}: ${result.errors} errors in wrk blob run`);
        mbps[t].push(result.bytes / result.seconds / 1e6);
      }
      log(
        `blob GET c=${connections} run ${run + 1}: wharf ${mbps.wharf.at(-1)?.toFixed(0)} MB/s, ` +
          `distribution ${mbps.distribution.at(-1)?.toFixed(0)}, nginx ${mbps.nginx.at(-1)?.toFixed(0)}`,
      );
    }
    const wharf = samples(mbps.wharf, 'MB/s', 0);
    const nginxSamples = samples(mbps.nginx, 'MB/s', 0);
    rows.push({
      scenario: `3. cached blob GET, ${Math.round(layer.size / 1e6)} MB, ${connections} client${connections > 1 ? 's' : ''} (wrk, MB/s)`,
      wharf,
      distribution: samples(mbps.distribution, 'MB/s', 0),
      reference: { label: 'nginx', samples: nginxSamples },
      target: '≥ 0.9× nginx',
      met: ratio(wharf, nginxSamples) >= 0.9,
    });
  }
  return rows;
}
