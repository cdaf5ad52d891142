/* global process, console, URL */
// CPU per byte of wharf processes, from /proc/<pid>/stat (issue 12; docs/cold-path-cpu.md). Less
// sensitive to a shared machine than throughput. Run from bench/cpu after `npm run build`:
//   node cpu-per-byte.mjs warm   # cached blob, wrk for SECS (4) s, C (1) connections: CPU s per GB
//   node cpu-per-byte.mjs cold   # cold 200 MB fills through curl on a warmed process: CPU s per 200 MB
// VARIANTS="label:K=V;K=V,label2:..." runs one wharf per variant side by side, alternating runs
// (REPS, default 4); DIST=<dist dir> per variant compares builds (a snapshot with package.json and
// migrations/ beside dist/); NODEFLAGS, TASKSET, THREADS=1 (per-thread and TCP counters), PERF=1.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
const mode = process.argv[2];
const reps = Number(process.env.REPS ?? 4),
  conns = Number(process.env.C ?? 1),
  secs = Number(process.env.SECS ?? 4);
const upPort = 41000 + Math.floor(Math.random() * 1000);
const kids = [];
const stat = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { u: +f[11], s: +f[12] };
};
import { readdirSync } from 'node:fs';
const threads = (pid) => {
  const o = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const raw = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = raw.slice(raw.indexOf('(') + 1, raw.lastIndexOf(')'));
      const f = raw.split(') ')[1].split(' ');
      const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      const vol = +/voluntary_ctxt_switches:\s+(\d+)/.exec(st)[1];
      const k = t === String(pid) ? 'main' : name;
      o[k] ??= { u: 0, s: 0, cs: 0 };
      o[k].u += +f[11];
      o[k].s += +f[12];
      o[k].cs += vol;
    } catch {
      // the thread exited meanwhile
    }
  }
  return o;
};
const nst = () => {
  const o = {};
  for (const l of execFileSync('nstat', ['-az']).toString().split('\n')) {
    const [k, v] = l.trim().split(/\s+/);
    if (
      /PruneCalled|RcvCollapsed|ToZeroWindowAdv|WantZeroWindow|TCPAutoCorking|DelayedACKs$|TCPOrigDataSent|TCPHPHits$/.test(
        k ?? '',
      )
    )
      o[k.replace('TcpExt', '')] = +v;
  }
  return o;
};
const ndiff = (a, b, gb) =>
  Object.keys(b)
    .map((k) => `${k}=${Math.round((b[k] - a[k]) / gb)}`)
    .join(' ');
const tdiff = (a, b, gb) =>
  Object.keys(b)
    .map(
      (k) =>
        `${k}:u${((b[k].u - (a[k]?.u ?? 0)) / 100 / gb).toFixed(2)}/s${((b[k].s - (a[k]?.s ?? 0)) / 100 / gb).toFixed(2)}/cs${Math.round((b[k].cs - (a[k]?.cs ?? 0)) / gb)}`,
    )
    .filter((x) => !/u0.00\/s0.00/.test(x))
    .join(' ');
const up = spawn('node', [new URL('./memory-upstream.mjs', import.meta.url).pathname], {
  env: { ...process.env, PORT: String(upPort), N: process.env.N ?? (mode === 'cold' ? '12' : '1') },
  stdio: ['ignore', 'pipe', 'inherit'],
});
kids.push(up);
await new Promise((r) => up.stdout.once('data', r));
const digests = JSON.parse(execFileSync('curl', ['-s', `http://127.0.0.1:${upPort}/list`]).toString());
const variants = (process.env.VARIANTS ?? 'on:WHARF_VERIFY_READS=true,off:WHARF_VERIFY_READS=false')
  .split(',')
  .map((v, i) => {
    const [label, envs] = v.split(':');
    const env = { ...process.env };
    for (const kv of (envs ?? '').split(';').filter(Boolean)) {
      const [k, ...rest] = kv.split('=');
      const val = rest.join('=');
      env[k] = val;
    }
    const dist = env.DIST ?? new URL('../../dist', import.meta.url).pathname;
    const port = upPort + 1 + i;
    const data = mkdtempSync('/tmp/perfh-');
    const child = spawn(
      env.TASKSET ? 'taskset' : 'node',
      [
        ...(env.TASKSET ? ['-c', env.TASKSET, 'node'] : []),
        ...(env.NODEFLAGS ?? '').split(' ').filter(Boolean),
        `${dist}/cli/main.js`,
        'serve',
        '--listen',
        `127.0.0.1:${port}`,
        '--data',
        data,
        '--log-level',
        'warn',
        '--upstream',
        `registry.example.test=http://127.0.0.1:${upPort}`,
      ],
      { env, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    kids.push(child);
    return { label, port, child, data, cpu: [], mbps: [], sys: [] };
  });
const cleanup = () => {
  for (const k of kids) k.kill('SIGKILL');
  for (const v of variants) rmSync(v.data, { recursive: true, force: true });
};
process.on('exit', cleanup);
const t0 = Date.now();
for (const v of variants)
  for (;;) {
    if (Date.now() - t0 > 20000) {
      console.error('no start', v.label);
      process.exit(1);
    }
    try {
      execFileSync('curl', ['-sf', `http://127.0.0.1:${v.port}/v2/`]);
      break;
    } catch {
      await sleep(50);
    }
  }
const url = (v, d) => `http://127.0.0.1:${v.port}/v2/registry.example.test/x/blobs/${d}`;
const curl = (u) =>
  execFileSync('curl', ['-sf', '-o', '/dev/null', '-w', '%{size_download} %{speed_download}', u])
    .toString()
    .split(' ')
    .map(Number);
if (mode === 'warm') {
  for (const v of variants) {
    curl(url(v, digests[0]));
    await sleep(500);
    curl(url(v, digests[0]));
    curl(url(v, digests[0]));
  }
  // warm-up wrk
  for (const v of variants)
    execFileSync('wrk', ['-c', String(conns), '-t', String(Math.min(conns, 2)), '-d', '2s', url(v, digests[0])]);
  for (let r = 0; r < reps; r++)
    for (const v of r % 2 ? [...variants].reverse() : variants) {
      const a = stat(v.child.pid);
      const ta = threads(v.child.pid);
      const na = nst();
      const out = execFileSync('wrk', [
        '-c',
        String(conns),
        '-t',
        String(Math.min(conns, 2)),
        '-d',
        `${secs}s`,
        url(v, digests[0]),
      ]).toString();
      const b = stat(v.child.pid);
      const m = /(\d+) requests in ([\d.]+)s, ([\d.]+)([KMG]B) read/.exec(out);
      const bytes = Number(m[3]) * { KB: 1024, MB: 1048576, GB: 1073741824 }[m[4]];
      const cpu = (b.u - a.u + b.s - a.s) / 100;
      v.cpu.push(cpu / (bytes / 1e9));
      v.sys.push((b.s - a.s) / 100 / (bytes / 1e9));
      v.mbps.push(bytes / Number(m[2]) / 1e6);
      if (process.env.THREADS)
        console.log(
          `  ${v.label} run ${r}: ${(cpu / (bytes / 1e9)).toFixed(2)} s/GB ${(bytes / Number(m[2]) / 1e6).toFixed(0)} MB/s per GB: ${tdiff(ta, threads(v.child.pid), bytes / 1e9)} | ${ndiff(na, nst(), bytes / 1e9)}`,
        );
    }
} else {
  // cold: fill digests[0], [1] to warm JIT; then measured fills
  let next = 0;
  for (const v of variants) {
    curl(url(v, digests[0]));
    curl(url(v, digests[1]));
  }
  next = 2;
  for (let r = 0; r < reps; r++) {
    const d = digests[next++];
    for (const v of r % 2 ? [...variants].reverse() : variants) {
      const a = stat(v.child.pid);
      const ta = threads(v.child.pid);
      const perf =
        process.env.PERF && r === 1
          ? spawn('perf', ['record', '-q', '-g', '-p', String(v.child.pid), '-o', `/tmp/perf-${v.label}.data`], {
              stdio: 'ignore',
            })
          : undefined;
      if (perf) await sleep(300);
      const [bytes, speed] = curl(url(v, d));
      await sleep(300); // let fsync/commit finish
      if (perf) {
        perf.kill('SIGINT');
        await new Promise((r) => perf.once('exit', r));
      }
      const b = stat(v.child.pid);
      if (process.env.THREADS)
        console.log(
          `  ${v.label} run ${r}: ${((b.u - a.u + b.s - a.s) / 100).toFixed(2)} s; per 200MB: ${tdiff(ta, threads(v.child.pid), bytes / 200e6)}`,
        );
      const cpu = (b.u - a.u + b.s - a.s) / 100;
      v.cpu.push(cpu / (bytes / 200e6));
      v.sys.push((b.s - a.s) / 100 / (bytes / 200e6));
      (v.usr ??= []).push((b.u - a.u) / 100 / (bytes / 200e6));
      v.mbps.push(speed / 1e6);
    }
  }
}
const med = (x) => {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const unit = mode === 'warm' ? 'CPU s/GB' : 'CPU s/200MB';
for (const v of variants)
  console.log(
    `${v.label}: ${unit} median ${med(v.cpu).toFixed(3)} [${Math.min(...v.cpu).toFixed(3)}-${Math.max(...v.cpu).toFixed(3)}] sys ${med(v.sys).toFixed(3)} user ${v.usr ? med(v.usr).toFixed(3) + ' [' + Math.min(...v.usr).toFixed(2) + '-' + Math.max(...v.usr).toFixed(2) + ']' : '-'}; MB/s median ${med(v.mbps).toFixed(0)} [${Math.min(...v.mbps).toFixed(0)}-${Math.max(...v.mbps).toFixed(0)}]  all cpu=${v.cpu.map((x) => x.toFixed(2)).join(',')} mbps=${v.mbps.map((x) => x.toFixed(0)).join(',')}`,
  );
console.log('load', readFileSync('/proc/loadavg', 'utf8').trim());
cleanup();
process.exit(0);
