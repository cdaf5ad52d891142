/**
 * Metrics, the access log and the health endpoints (issue 9, Observability), against a real
 * upstream (CNCF distribution on loopback): the counters move as a cold pull and a warm pull
 * should move them, each request is one JSON line naming what it did, and /readyz notices a data
 * directory it cannot write and an index that is closed.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopback } from '../src/registry/health-routes.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call, errorCode, pushBlob, pushImage, sha256 } from './support/http.js';
import { captureLog, type LogLine } from './support/log-capture.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { withDeadline } from './support/run.js';
import { startScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';
import { metric } from './support/metrics-text.js';

const upstreamHost = 'registry.example.test';
const accept = 'application/vnd.oci.image.manifest.v1+json';

let upstream: DistributionHandle;
let image: TestImage;

beforeAll(async () => {
  upstream = await startDistribution();
  image = await makeImage({ seed: testSeed('observability'), layers: 2 });
  await pushTestImage(upstream.url, 'team/app', 'v1', image);
}, 120_000);

afterAll(async () => {
  await upstream?.close();
});

function mirrorOf(options: Parameters<typeof startWharf>[0] = {}, prefetch = true): Promise<WharfHandle> {
  return startWharf({ upstreams: [{ host: upstreamHost, url: upstream.url, tagTtlMs: 60_000, prefetch }], ...options });
}

/** Scrapes once no fill is in flight: a reader gets its last byte once verified, before the fill is committed. */
async function scrape(wharf: WharfHandle): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (wharf.server.proxy.fills.inFlight > 0) {
    if (Date.now() > deadline) throw new Error('fills still in flight after 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const response = await call(wharf.url, '/metrics');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return response.text();
}

/** A client pull of team/app:v1 through the path prefix: manifest by tag, config, layers. Returns bytes received. */
async function pull(wharf: WharfHandle, headers: Record<string, string> = {}): Promise<number> {
  const name = `${upstreamHost}/team/app`;
  const root = await call(wharf.url, `/v2/${name}/manifests/v1`, { headers: { Accept: accept, ...headers } });
  expect(root.status).toBe(200);
  const bytes = Buffer.from(await root.arrayBuffer());
  let total = bytes.byteLength;
  const manifest = JSON.parse(bytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
    const blob = await call(wharf.url, `/v2/${name}/blobs/${digest}`, { headers });
    expect(blob.status).toBe(200);
    const body = Buffer.from(await blob.arrayBuffer());
    expect(sha256(body)).toBe(digest);
    total += body.byteLength;
  }
  return total;
}

const blobCount = 3; // config and two layers

describe('metrics', () => {
  it('count the blobs a cold image manifest prefetched (issue 12)', async () => {
    const wharf = await mirrorOf();
    try {
      const response = await call(wharf.url, `/v2/${upstreamHost}/team/app/manifests/v1`, { headers: { accept } });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      const text = await scrape(wharf);
      expect(metric(text, 'wharf_prefetch_blobs_total', { outcome: 'started' })).toBe(blobCount);
      expect(metric(text, 'wharf_prefetch_blobs_total', { outcome: 'failed' })).toBe(0);
      expect(metric(text, 'wharf_fills_total', { outcome: 'completed' })).toBe(blobCount);
    } finally {
      await wharf.close();
    }
  });

  it('count a cold pull as fills and a warm pull as hits, with store size and process metrics', async () => {
    // Without prefetch: a blob it stored before the client asked would count as a hit, depending on timing.
    const wharf = await mirrorOf({}, false);
    try {
      const bytes = await pull(wharf);
      const cold = await scrape(wharf);
      expect(metric(cold, 'wharf_cache_results_total', { route: 'blob', result: 'fill' })).toBe(blobCount);
      expect(metric(cold, 'wharf_cache_results_total', { route: 'manifest', result: 'fill' })).toBe(1);
      expect(metric(cold, 'wharf_cache_results_total', { result: 'hit' })).toBe(0);
      expect(metric(cold, 'wharf_served_bytes_total', { source: 'fill' })).toBe(bytes);
      expect(metric(cold, 'wharf_served_bytes_total', { source: 'store' })).toBe(0);
      expect(metric(cold, 'wharf_fills_total', { outcome: 'completed' })).toBe(blobCount);
      expect(metric(cold, 'wharf_fills_total', { outcome: 'failed' })).toBe(0);
      expect(metric(cold, 'wharf_fills_in_flight')).toBe(0);
      expect(metric(cold, 'wharf_fills_queued')).toBe(0);
      expect(metric(cold, 'wharf_http_requests_total', { route: 'blob', method: 'GET', status: '200' })).toBe(
        blobCount,
      );
      expect(metric(cold, 'wharf_http_request_duration_seconds_count', { route: 'manifest' })).toBe(1);
      const upstreamCalls = metric(cold, 'wharf_upstream_requests_total', { upstream: upstreamHost });
      // At least the manifest and each blob.
      expect(upstreamCalls).toBeGreaterThanOrEqual(1 + blobCount);
      expect(metric(cold, 'wharf_upstream_request_duration_seconds_count', { upstream: upstreamHost })).toBe(
        upstreamCalls,
      );
      expect(metric(cold, 'wharf_upstream_errors_total')).toBe(0);
      // The manifest is a blob file of the store too.
      expect(metric(cold, 'wharf_store_blobs')).toBe(blobCount + 1);
      expect(metric(cold, 'wharf_store_bytes')).toBe(bytes);
      expect(metric(cold, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

      expect(await pull(wharf)).toBe(bytes);
      const warm = await scrape(wharf);
      expect(metric(warm, 'wharf_cache_results_total', { route: 'blob', result: 'hit' })).toBe(blobCount);
      expect(metric(warm, 'wharf_cache_results_total', { route: 'manifest', result: 'hit' })).toBe(1);
      expect(metric(warm, 'wharf_cache_results_total', { result: 'fill' })).toBe(blobCount + 1);
      expect(metric(warm, 'wharf_served_bytes_total', { source: 'store' })).toBe(bytes);
      expect(metric(warm, 'wharf_fills_total', { outcome: 'started' })).toBe(blobCount);
      // Within the tag TTL a warm pull asks the upstream nothing.
      expect(metric(warm, 'wharf_upstream_requests_total')).toBe(upstreamCalls);
      expect(metric(warm, 'wharf_http_requests_total', { route: 'blob', status: '200' })).toBe(2 * blobCount);
    } finally {
      await wharf.close();
    }
  }, 60_000);

  it('count a name the upstream does not have as not_found, and local names without a cache result', async () => {
    const wharf = await mirrorOf();
    try {
      const missing = await call(wharf.url, `/v2/${upstreamHost}/team/none/manifests/v1`, {
        headers: { Accept: accept },
      });
      expect(missing.status).toBe(404);
      await pushImage(wharf.url, 'local/app', 'v1');
      expect((await call(wharf.url, '/v2/local/app/manifests/v1', { headers: { Accept: accept } })).status).toBe(200);
      const text = await scrape(wharf);
      expect(metric(text, 'wharf_cache_results_total', { route: 'manifest', result: 'not_found' })).toBe(1);
      expect(metric(text, 'wharf_cache_results_total')).toBe(1);
      expect(metric(text, 'wharf_http_requests_total', { route: 'manifest', method: 'GET', status: '404' })).toBe(1);
      expect(metric(text, 'wharf_http_requests_total', { route: 'manifest', method: 'PUT', status: '201' })).toBe(1);
      expect(metric(text, 'wharf_http_requests_total', { route: 'upload', method: 'POST', status: '201' })).toBe(2);
    } finally {
      await wharf.close();
    }
  }, 60_000);

  it('treat only loopback addresses as loopback (who may read /metrics when users are configured)', () => {
    for (const address of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) expect(isLoopback(address)).toBe(true);
    for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '::', '128.0.0.1', 'fe80::1', undefined]) {
      expect(isLoopback(address)).toBe(false);
    }
  });
});

function requestLines(lines: LogLine[]): LogLine[] {
  return lines.filter((line) => line.msg === 'request' || String(line.msg).startsWith('request cut short'));
}

describe('access log', () => {
  const password = 'alice-secret-pw';
  let wharf: WharfHandle;
  const log = captureLog('info');

  beforeAll(async () => {
    wharf = await mirrorOf(
      {
        logger: log.logger,
        auth: {
          users: new Map([['alice', bcrypt.hashSync(password, 4)]]),
          access: [
            { repositories: ['**'], users: ['alice'], allow: ['pull', 'push', 'delete'] },
            { repositories: ['**'], users: ['anonymous'], allow: ['pull'] },
          ],
          tokenTtlMs: 300_000,
          realm: undefined,
        },
      },
      // Without prefetch: a blob it stored before the client asked would log as a hit, depending on timing.
      false,
    );
  });

  afterAll(async () => {
    await wharf?.close();
  });

  it('writes one line per request of a pull, with the cache result, upstream and request id', async () => {
    const before = log.lines.length;
    const bytes = await pull(wharf, { 'X-Request-Id': 'pull-1234' });
    await log.quiet(200);
    const lines = requestLines(log.lines.slice(before));
    expect(lines).toHaveLength(1 + blobCount);
    const [manifest, ...blobs] = lines;
    expect(manifest).toMatchObject({
      level: 30,
      method: 'GET',
      route: 'manifest',
      repository: `${upstreamHost}/team/app`,
      reference: 'v1',
      status: 200,
      cache: 'fill',
      upstream: upstreamHost,
      requestId: 'pull-1234',
      client: '127.0.0.1',
      completed: true,
    });
    expect(typeof manifest?.durationMs).toBe('number');
    expect(manifest?.user).toBeUndefined();
    for (const line of blobs) {
      expect(line).toMatchObject({ route: 'blob', status: 200, cache: 'fill', upstream: upstreamHost });
      expect(String(line.reference)).toMatch(/^sha256:/);
    }
    expect(lines.reduce((sum, line) => sum + Number(line.bytes), 0)).toBe(bytes);
  }, 60_000);

  it('echoes a sane X-Request-Id and replaces one that is not', async () => {
    const kept = await call(wharf.url, '/v2/', { headers: { 'X-Request-Id': 'abc-123' } });
    expect(kept.headers.get('x-request-id')).toBe('abc-123');
    const replaced = await call(wharf.url, '/v2/', { headers: { 'X-Request-Id': 'no spaces "allowed"' } });
    const made = /^[0-9a-f]{12}-[0-9a-z]+$/;
    expect(replaced.headers.get('x-request-id')).toMatch(made);
    const generated = await call(wharf.url, '/v2/');
    expect(generated.headers.get('x-request-id')).toMatch(made);
    expect(generated.headers.get('x-request-id')).not.toBe(replaced.headers.get('x-request-id'));
    // An error answer and a blob answer carry it too.
    const missing = await call(wharf.url, '/v2/team/none/blobs/sha256:' + '0'.repeat(64), {
      headers: { 'X-Request-Id': 'err-1' },
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toBe('err-1');
  });

  it('logs a push with the signed-in user and never a credential', async () => {
    const before = log.lines.length;
    const authorization = `Basic ${Buffer.from(`alice:${password}`).toString('base64')}`;
    const pushed = await pushImage(wharf.url, 'team/pushed', 'v2', 'push', {}, { Authorization: authorization });
    await log.quiet(200);
    const lines = requestLines(log.lines.slice(before));
    expect(lines.map((line) => [line.method, line.route, line.status, line.user])).toEqual([
      ['POST', 'upload', 201, 'alice'],
      ['POST', 'upload', 201, 'alice'],
      ['PUT', 'manifest', 201, 'alice'],
    ]);
    expect(lines[2]).toMatchObject({ repository: 'team/pushed', reference: 'v2' });
    expect(lines[2]?.cache).toBeUndefined();
    expect(pushed.digest).toMatch(/^sha256:/);
    const text = JSON.stringify(log.lines);
    expect(text).not.toContain(password);
    expect(text).not.toContain(authorization.slice(6));
  });

  it('logs a refused request with its status and no user', async () => {
    const before = log.lines.length;
    const refused = await call(wharf.url, '/v2/team/pushed/blobs/uploads/', { method: 'POST' });
    expect(refused.status).toBe(401);
    expect(await errorCode(refused)).toBe('UNAUTHORIZED');
    const wrong = await call(wharf.url, '/v2/team/pushed/blobs/uploads/', {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    await log.quiet(200);
    const lines = requestLines(log.lines.slice(before));
    expect(lines.map((line) => [line.method, line.route, line.status, line.repository, line.user])).toEqual([
      ['POST', 'upload', 401, 'team/pushed', undefined],
      ['POST', 'upload', 401, 'team/pushed', undefined],
    ]);
    expect(JSON.stringify(log.lines.slice(before))).not.toContain('wrong');
  });

  it('logs a token request under the token route class', async () => {
    const before = log.lines.length;
    const token = await call(wharf.url, '/token?service=wharf&scope=repository:team/pushed:pull');
    expect(token.status).toBe(200);
    await log.quiet(200);
    expect(requestLines(log.lines.slice(before))).toMatchObject([{ route: 'token', status: 200, method: 'GET' }]);
  });

  it('logs the body bytes sent: none for a 304, the range for a 206, the whole blob for a 200', async () => {
    const authorization = `Basic ${Buffer.from(`alice:${password}`).toString('base64')}`;
    const pushed = await pushImage(wharf.url, 'team/bytes', 'v1', 'bytes', {}, { Authorization: authorization });
    const layerBytes = 'layer-bytes';
    const layer = sha256(layerBytes);
    const before = log.lines.length;
    const notModified = await call(wharf.url, `/v2/team/bytes/manifests/${pushed.digest}`, {
      headers: { 'If-None-Match': `"${pushed.digest}"` },
    });
    expect(notModified.status).toBe(304);
    const partial = await call(wharf.url, `/v2/team/bytes/blobs/${layer}`, { headers: { Range: 'bytes=2-5' } });
    expect(partial.status).toBe(206);
    expect(await partial.text()).toBe(layerBytes.slice(2, 6));
    const whole = await call(wharf.url, `/v2/team/bytes/blobs/${layer}`);
    expect(await whole.text()).toBe(layerBytes);
    await log.quiet(200);
    expect(requestLines(log.lines.slice(before)).map((line) => [line.route, line.status, line.bytes])).toEqual([
      ['manifest', 304, 0],
      ['blob', 206, 4],
      ['blob', 200, layerBytes.length],
    ]);
  });

  it('logs a client that leaves mid-blob as one info line, nothing louder', async () => {
    const authorization = `Basic ${Buffer.from(`alice:${password}`).toString('base64')}`;
    const big = Buffer.alloc(48 * 1024 * 1024, 7);
    const digest = await pushBlob(wharf.url, 'team/big', big, { Authorization: authorization });
    await log.quiet(200);
    const before = log.lines.length;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response to the blob GET')), 20_000);
      const request = get(`${wharf.url}/v2/team/big/blobs/${digest}`, { headers: { Authorization: authorization } });
      request.on('response', (response) => {
        response.once('data', () => {
          clearTimeout(timer);
          request.destroy();
          resolve();
        });
      });
      request.on('error', () => undefined);
    });
    await log.quiet(300);
    const lines = log.lines.slice(before);
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    const info = lines.filter((line) => line.level >= 30);
    expect(info).toHaveLength(1);
    expect(info[0]).toMatchObject({ route: 'blob', status: 200, completed: false, user: 'alice' });
    expect(Number(info[0]?.bytes)).toBeLessThan(big.byteLength);
  }, 60_000);
});

describe('a client that leaves before its manifest is answered', () => {
  // Manifest answers are reported right after they are written (no 'close' listener on the hot
  // path): one written to a connection already gone must still count as cut short, not completed.
  it('is one cut-short line and counts as cut short, with no bytes', async () => {
    let answered!: () => void;
    const upstreamAnswered = new Promise<void>((resolve) => (answered = resolve));
    const upstream = await startScriptedRegistry({
      '/v2/team/slow/manifests/v1': (_req, res) => {
        setTimeout(() => {
          res.writeHead(404, { 'Content-Type': 'application/json' });
          res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}');
          answered();
        }, 600);
      },
    });
    const log = captureLog('info');
    const wharf = await startWharf({
      logger: log.logger,
      upstreams: [{ host: 'slow.example.test', url: upstream.url }],
    });
    try {
      await withDeadline(
        new Promise<void>((resolve) => {
          const request = get(`${wharf.url}/v2/slow.example.test/team/slow/manifests/v1`, {
            headers: { Accept: accept, 'X-Request-Id': 'gone-1' },
          });
          request.on('error', () => resolve());
          setTimeout(() => {
            request.destroy();
            resolve();
          }, 150);
        }),
        10_000,
        'a manifest GET abandoned mid-wait',
      );
      await withDeadline(upstreamAnswered, 10_000, 'the upstream answer');
      await log.quiet(300);
      const lines = log.lines.filter((line) => line.requestId === 'gone-1');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ route: 'manifest', completed: false, bytes: 0, level: 30 });
      expect(String(lines[0]?.msg)).toContain('cut short');
      const text = await scrape(wharf);
      expect(metric(text, 'wharf_http_requests_cut_short_total', { route: 'manifest' })).toBe(1);
    } finally {
      await wharf.close();
      await upstream.close();
    }
  }, 60_000);
});

describe('health', () => {
  it('answers /healthz always and /readyz while the data directory takes a write', async () => {
    const wharf = await mirrorOf();
    try {
      const health = await call(wharf.url, '/healthz');
      expect(health.status).toBe(200);
      expect(await health.text()).toBe('ok\n');
      expect((await call(wharf.url, '/readyz')).status).toBe(200);
      // Root ignores file modes, so the write fails another way: tmp/ becomes a plain file.
      const tmp = join(wharf.dataDir, 'tmp');
      await rename(tmp, `${tmp}.away`);
      await writeFile(tmp, 'not a directory');
      try {
        const notReady = await call(wharf.url, '/readyz');
        expect(notReady.status).toBe(503);
        const body = (await notReady.json()) as { errors: { code: string; message: string }[] };
        expect(body.errors[0]?.code).toBe('UNAVAILABLE');
        expect(body.errors[0]?.message).toContain('data directory is not writable');
        expect((await call(wharf.url, '/healthz')).status).toBe(200);
      } finally {
        await rm(tmp, { force: true });
        await rename(`${tmp}.away`, tmp);
      }
      expect((await call(wharf.url, '/readyz')).status).toBe(200);
    } finally {
      await wharf.close();
    }
  });

  it('answers /readyz 503 once the index is closed', async () => {
    const wharf = await mirrorOf();
    try {
      expect((await call(wharf.url, '/readyz')).status).toBe(200);
      wharf.server.store.close();
      const notReady = await call(wharf.url, '/readyz');
      expect(notReady.status).toBe(503);
      expect(((await notReady.json()) as { errors: { message: string }[] }).errors[0]?.message).toContain(
        'index is closed',
      );
      // The scrape still answers (the last size known).
      expect((await call(wharf.url, '/metrics')).status).toBe(200);
    } finally {
      await mkdir(wharf.dataDir, { recursive: true });
      await wharf.close();
    }
  });
});
