/**
 * @module bench/scenarios/shaped-link
 * Scenario 8 (issue 12): the upstream behind a shaped link (bench/shaped-relay.ts: a round trip
 * per connection and per request, a bandwidth cap per connection), an image shaped like a
 * language runtime (10 layers of mixed sizes, ~110 MiB, an index of 2 platforms), pulled cold by
 * real clients three ways in each run: straight from the upstream (through the relay), through
 * wharf and through distribution (each a fresh mirror whose upstream is the relay). Clients:
 * skopeo, containerd's ctr (hosts.toml mirror) and docker (registry-mirrors), each with a fresh
 * client store per pull. The relay runs in its own process; its CPU is measured and reported.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd, writeHostsToml } from '../../test/support/containerd.js';
import { startDockerd } from '../../test/support/dockerd.js';
import { log, rotate, startMirror, type BenchContext, type MirrorKind } from '../context.js';
import type { BenchIndex } from '../images.js';
import { exec, makeTempDir, removeTempDir } from '../processes.js';
import { ratio, samples, type Row } from '../report.js';
import { mirroredHost, startRelay, type Server } from '../servers.js';

type Target = MirrorKind | 'direct';
type Client = 'skopeo' | 'ctr' | 'docker';

const pullTimeoutMs = 600_000;

/** utime + stime of a process, in seconds (clock ticks are 1/100 s on Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** One cold pull of the amd64 image with `client` from `source` (a mirror, or the relay itself); seconds. */
async function pull(client: Client, target: Target, source: Server, relay: Server, image: BenchIndex): Promise<number> {
  const work = await makeTempDir(`shaped-${client}`);
  try {
    if (client === 'skopeo') {
      const name = target === 'wharf' ? `${mirroredHost}/${image.name}` : image.name;
      const result = await exec(
        'skopeo',
        [
          'copy',
          '--quiet',
          '--override-os=linux',
          '--override-arch=amd64',
          '--src-tls-verify=false',
          `docker://${source.host}/${name}:${image.tag}`,
          `dir:${join(work, 'out')}`,
        ],
        { timeoutMs: pullTimeoutMs },
      );
      return result.ms / 1000;
    }
    if (client === 'ctr') {
      const containerd = await startContainerd();
      try {
        const hostsDir = join(work, 'hosts');
        // Direct: the relay is the registry. Mirrors: registry.example.test's pulls go to the mirror (?ns= it).
        const registry = target === 'direct' ? relay.host : mirroredHost;
        await writeHostsToml(hostsDir, registry, source.url);
        const started = performance.now();
        await containerd.pull(`${registry}/${image.name}:${image.tag}`, {
          hostsDir,
          platform: 'linux/amd64',
          timeoutMs: pullTimeoutMs,
        });
        return (performance.now() - started) / 1000;
      } finally {
        await containerd.close();
      }
    }
    // docker: registry-mirrors applies to Docker Hub names; direct goes to the relay as an insecure registry.
    const dockerd = await startDockerd(
      target === 'direct' ? { insecureRegistries: [relay.host] } : { registryMirrors: [source.url] },
    );
    try {
      const ref = target === 'direct' ? `${relay.host}/${image.name}:${image.tag}` : `${image.name}:${image.tag}`;
      const started = performance.now();
      await dockerd.docker(['pull', '--quiet', '--platform', 'linux/amd64', ref], { timeoutMs: pullTimeoutMs });
      return (performance.now() - started) / 1000;
    } finally {
      await dockerd.close();
    }
  } finally {
    await removeTempDir(work);
  }
}

export async function runShapedLink(ctx: BenchContext, image: BenchIndex): Promise<Row[]> {
  const { rttMs, mbPerSecond, clients } = ctx.config.shaped;
  const relay = await startRelay({ target: ctx.upstream.host, rttMs, mbPerSecond });
  const cpuAtStart = await cpuSeconds(relay.pid);
  const started = performance.now();
  const times: Record<Client, Record<Target, number[]>> = {
    skopeo: { direct: [], wharf: [], distribution: [] },
    ctr: { direct: [], wharf: [], distribution: [] },
    docker: { direct: [], wharf: [], distribution: [] },
  };
  try {
    for (let run = 0; run < ctx.config.runs; run++) {
      for (const client of clients) {
        for (const target of rotate<Target>(['direct', 'wharf', 'distribution'], run)) {
          const mirror = target === 'direct' ? undefined : await startMirror(ctx, target, undefined, relay);
          try {
            times[client][target].push(await pull(client, target, mirror ?? relay, relay, image));
          } finally {
            await mirror?.close({ removeData: true });
          }
        }
        const t = times[client];
        log(
          `shaped link, run ${run + 1}/${ctx.config.runs}, ${client}: direct ${t.direct.at(-1)?.toFixed(2)} s, ` +
            `wharf ${t.wharf.at(-1)?.toFixed(2)} s, distribution ${t.distribution.at(-1)?.toFixed(2)} s`,
        );
      }
    }
  } finally {
    const cpu = (await cpuSeconds(relay.pid)) - cpuAtStart;
    const seconds = (performance.now() - started) / 1000;
    await relay.close({ removeData: true });
    const relayed = Number(/bytes (\d+)/.exec(relay.output())?.[1] ?? Number.NaN);
    ctx.notes.push(
      `Scenario 8, the relay's own cost: ${cpu.toFixed(2)} s of CPU for ${(relayed / 1e6).toFixed(0)} MB relayed from the upstream ` +
        `(${((cpu / relayed) * 1e9).toFixed(2)} CPU-s per GB; ${((cpu / seconds) * 100).toFixed(1)}% of one core over the scenario's ${seconds.toFixed(0)} s).`,
    );
  }
  const mb = Math.round(
    ((image.platforms[0]?.image.layers.reduce((sum, layer) => sum + layer.size, 0) ?? 0) / 1024 ** 2) * 10,
  );
  const link = `${rttMs} ms RTT, ${mbPerSecond} MB/s per connection`;
  return clients.map((client): Row => {
    const wharf = samples(times[client].wharf, 's', 2);
    const distribution = samples(times[client].distribution, 's', 2);
    const direct = samples(times[client].direct, 's', 2);
    const base: Row = {
      scenario: `8. shaped link (${link}), cold pull of a 10-layer ${(mb / 10).toFixed(0)} MiB image (2-platform index), ${client} (s)`,
      wharf,
      distribution,
      reference: { label: 'direct from upstream', samples: direct },
      target: '—',
    };
    if (client === 'skopeo') return { ...base, target: '≤ 0.7× direct', met: ratio(wharf, direct) <= 0.7 };
    if (client === 'ctr') return { ...base, target: '< distribution', met: ratio(wharf, distribution) < 1 };
    return base;
  });
}
