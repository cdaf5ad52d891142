/**
 * Property tests (fast-check) against a real in-process wharf: arbitrary repository names
 * (traversal-like, percent-encoded, latin-1, unicode), references, digests, Range and Content-Range
 * headers, query parameters (n, last, ns, mount, from, digest, artifactType) and manifest JSON,
 * arbitrary and near-valid. For every request: no 5xx (the one upstream is up, so not even 503),
 * a JSON OCI error body on every 4xx but HEAD, and no connection to any host wharf was not
 * configured with. The one configured upstream is a scripted registry; a second "attacker" server
 * is named in ns= values and path prefixes and must never hear from wharf.
 *
 * The seed is fixed and printed (WHARF_FC_SEED replays or varies it); runs per property are
 * sized to keep the file under a minute.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as fc from 'fast-check';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorStatus } from '../../src/oci/errors.js';
import { pushBlob, pushImage, sha256 } from '../support/http.js';
import { withDeadline } from '../support/run.js';
import { startScriptedRegistry, type ScriptedRegistry } from '../support/scripted-registry.js';
import { startWharf, type WharfHandle } from '../support/wharf.js';

const seed = Number(process.env['WHARF_FC_SEED'] ?? 20_240_611);
const runs = (n: number): fc.Parameters<unknown> => ({ seed, numRuns: n, endOnFailure: true });
console.info(`[faults/bad-input] fast-check seed=${seed} (replay or vary with WHARF_FC_SEED=<n>)`);

const upstreamHost = 'upstream.test';
const knownCodes = new Set(Object.keys(errorStatus));
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';

let wharf: WharfHandle;
let upstream: ScriptedRegistry;
let attacker: Server;
let attackerPort = 0;
const attackerHits: string[] = [];
let pool: Pool;

/** The blob the Range property reads; no other property can name its repository. */
const rangeRepo = 'range/fixture';
const rangeBlob = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 256));
const rangeDigest = sha256(rangeBlob);
/** Blobs near-valid manifests point at, in `manifests/app`. */
const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
const layerBytes = 'a layer of sorts';
const known = {
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: sha256(configBytes),
    size: configBytes.length,
  },
  layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layerBytes), size: layerBytes.length },
};
let knownManifestDigest = '';
/** An image manifest in `manifests/app`: the child of generated indexes and their subject. */
let knownChild = { mediaType: ociManifest, digest: '', size: 0 };

beforeAll(async () => {
  attacker = createServer((req, res) => {
    attackerHits.push(`${req.method} ${req.url}`);
    res.end();
  });
  attacker.on('connection', () => attackerHits.push('(connection)'));
  await withDeadline(
    new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve)),
    5_000,
    'attacker server listening',
  );
  attackerPort = (attacker.address() as AddressInfo).port;
  upstream = await startScriptedRegistry({});
  wharf = await startWharf({
    upstreams: [
      { host: upstreamHost, url: upstream.url, timeouts: { connectMs: 1000, headersMs: 2000, bodyIdleMs: 2000 } },
    ],
  });
  pool = new Pool(wharf.url, { connections: 8 });
  const push = await fetch(`${wharf.url}/v2/${rangeRepo}/blobs/uploads/?digest=${rangeDigest}`, {
    method: 'POST',
    body: rangeBlob,
    signal: AbortSignal.timeout(10_000),
  });
  expect(push.status).toBe(201);
  await pushBlob(wharf.url, 'manifests/app', configBytes);
  await pushBlob(wharf.url, 'manifests/app', layerBytes);
  knownManifestDigest = (await pushImage(wharf.url, 'prop/app', 'v1')).digest;
  const child = await pushImage(wharf.url, 'manifests/app', 'child', 'child');
  knownChild = { mediaType: ociManifest, digest: child.digest, size: child.bytes.length };
});

afterAll(async () => {
  await pool?.close();
  await wharf?.close();
  await upstream?.close();
  if (attacker !== undefined) {
    attacker.closeAllConnections();
    await withDeadline(new Promise((resolve) => attacker.close(resolve)), 5_000, 'attacker server closing');
  }
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface Sent {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

function describeRequest(req: Sent, answer?: Answer): string {
  const headers = req.headers === undefined ? '' : ` ${JSON.stringify(req.headers)}`;
  const body = req.body === undefined ? '' : ` body=${JSON.stringify(req.body.toString().slice(0, 300))}`;
  const got = answer === undefined ? '' : ` → ${answer.status} ${answer.body.toString().slice(0, 300)}`;
  return `${req.method} ${req.path}${headers}${body}${got}`;
}

async function send(req: Sent): Promise<Answer> {
  const response = await pool.request({
    method: req.method,
    path: req.path,
    headers: req.headers,
    body: req.body,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
}

/** Statuses seen per property, printed after it: shows the runs reached past the input checks. */
let tally = new Map<string, number>();

function printTally(property: string): void {
  const counts = [...tally.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}×${n}`);
  console.info(`[faults/bad-input] ${property}: ${counts.join(' ')}`);
  tally = new Map();
}

/** Sends and checks what every answer must satisfy; the thrown message names the request. */
async function sendChecked(req: Sent): Promise<Answer> {
  const answer = await send(req);
  const key = `${req.method} ${answer.status}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
  const fail = (why: string): never => {
    throw new Error(`${why}: ${describeRequest(req, answer)}`);
  };
  if (answer.status >= 500) fail('server error');
  if (answer.status >= 400) {
    if (req.method === 'HEAD') {
      if (answer.body.length !== 0) fail('HEAD error with a body');
    } else {
      if (!String(answer.headers['content-type']).startsWith('application/json')) fail('error without JSON');
      let parsed: { errors?: { code?: unknown; message?: unknown }[] };
      try {
        parsed = JSON.parse(answer.body.toString()) as typeof parsed;
      } catch {
        return fail('error body is not JSON');
      }
      const errors = parsed.errors;
      if (!Array.isArray(errors) || errors.length === 0) fail('error body without errors[]');
      for (const error of errors ?? []) {
        if (typeof error.code !== 'string' || !knownCodes.has(error.code)) fail('unknown error code');
        if (typeof error.message !== 'string') fail('error without a message');
      }
    }
  }
  return answer;
}

// ---- arbitraries ----

/**
 * Characters a request line may carry unencoded: visible ASCII minus / ? # and backslash. Raw bytes
 * 0x80–0xff never reach wharf (Node's HTTP parser answers them with its own bare 400 and closes);
 * a backslash is refused by the HTTP adaptor before wharf's app: its own test below.
 */
const rawChar = fc
  .integer({ min: 0x21, max: 0x7e })
  .filter((c) => c !== 0x2f && c !== 0x3f && c !== 0x23 && c !== 0x5c)
  .map((c) => String.fromCharCode(c));

/** One path segment: valid name components, traversal and encoding tricks, arbitrary text raw or encoded. */
function segment(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.stringMatching(/^[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,5}){0,2}$/) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '..',
        '.',
        '%2e%2e',
        '%2E%2E',
        '%2f',
        '%2F',
        '..%2f..',
        '%252e%252e',
        '%00',
        '%',
        '%zz',
        '~root',
        'A',
        'UPPER',
        '_',
        '-',
        'a__b',
        'a..b',
        '%20',
        '%C3%A9',
        'blobs',
        'manifests',
        'uploads',
        'tags',
        'list',
        'v2',
        '_catalog',
        'referrers',
        'x'.repeat(300),
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.string({ unit: rawChar, maxLength: 12 }) },
  );
}

/** Prefixes that name the attacker (raw, canonical host-port form, localhost) or the real upstream. */
function hostPrefix(): fc.Arbitrary<string> {
  const p = attackerPort;
  return fc.constantFrom(
    '',
    '',
    '',
    '',
    `${upstreamHost}/`,
    `${upstreamHost}/`,
    `UPSTREAM.TEST/`,
    `127.0.0.1:${p}/`,
    `127.0.0.1-${p}/`,
    `localhost:${p}/`,
    `localhost-${p}/`,
    `127.0.0.1%3a${p}/`,
    `http:/127.0.0.1:${p}/`,
    `${upstreamHost}@127.0.0.1:${p}/`,
    `[::1]:${p}/`,
  );
}

function repoName(): fc.Arbitrary<string> {
  return fc
    .tuple(hostPrefix(), fc.array(segment(), { minLength: 1, maxLength: 4 }))
    .map(([prefix, parts]) => `${prefix}${parts.join('/')}`)
    .filter((name) => name !== rangeRepo && !name.startsWith(`${rangeRepo}/`));
}

/** ns= values: the attacker in every spelling, the real upstream, the built-in names (not configured here), junk. */
function namespace(): fc.Arbitrary<string | undefined> {
  const p = attackerPort;
  return fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      upstreamHost,
      'UpStream.Test',
      'docker.io',
      'ghcr.io',
      `127.0.0.1:${p}`,
      `127.0.0.1-${p}`,
      `localhost:${p}`,
      `[::1]:${p}`,
      `http://127.0.0.1:${p}`,
      `http://127.0.0.1:${p}/v2/`,
      `${upstreamHost}@127.0.0.1:${p}`,
      `127.0.0.1:${p}#${upstreamHost}`,
      `${upstreamHost}:${p}`,
      `${upstreamHost}/../127.0.0.1:${p}`,
      '',
    ),
    fc.string({ unit: 'binary', maxLength: 30 }),
  );
}

const hex = (length: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });

function digest(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: hex(64).map((h) => `sha256:${h}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(rangeDigest, known.config.digest, known.layer.digest, knownManifestDigest),
    },
    { weight: 1, arbitrary: hex(128).map((h) => `sha512:${h}`) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.integer({ min: 0, max: 130 }).chain((n) => hex(n).map((h) => `sha256:${h}`)),
        hex(64).map((h) => `sha256:${h.toUpperCase()}`),
        hex(96).map((h) => `sha384:${h}`),
        hex(32).map((h) => `md5:${h}`),
        fc.base64String({ maxLength: 60 }).map((b) => `sha256+b64:${b}`),
        fc.constantFrom(
          '',
          ':',
          'sha256:',
          'sha256',
          ':abc',
          'sha256:..%2f..%2fetc%2fpasswd',
          `sha256:${'0'.repeat(2000)}`,
        ),
        fc.string({ unit: rawChar, maxLength: 80 }),
        fc.string({ unit: 'binary', maxLength: 40 }).map(encodeURIComponent),
      ),
    },
  );
}

function reference(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}$/),
    fc.constantFrom('v1', 'latest', 'x'.repeat(128), 'x'.repeat(129), '-dash', '.dot', '%2e%2e', '..'),
    digest(),
    fc.string({ unit: rawChar, maxLength: 30 }),
  );
}

/** Query values: numbers in and out of range, and anything at all. */
const queryValue = fc.oneof(
  fc.nat().map(String),
  fc.constantFrom('0', '-1', '1e3', '9'.repeat(30), '', ' 1', '0x10', 'NaN'),
  fc.string({ unit: 'binary', maxLength: 30 }),
);

function query(params: Record<string, string | undefined>): string {
  const entries = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined);
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries).toString()}`;
}

/** Sets (or, for undefined, removes) a dotted path like "layers.0.digest", creating objects on the way. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node: Record<string, unknown> = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1] ?? '';
  if (value === undefined) delete node[last];
  else node[last] = structuredClone(value);
}

function expectNoAttackerContact(): void {
  expect(attackerHits, 'requests or connections that reached the attacker server').toEqual([]);
}

/** Every request the upstream saw was built from a validated name: no traversal, no encoded tricks. */
function expectCleanUpstreamRequests(): void {
  const odd = upstream.requests.map((r) => r.url).filter((url) => /\.\.|%|\/\/|[^\x21-\x7e]/.test(url));
  expect(odd, 'requests wharf sent its upstream').toEqual([]);
}

// ---- properties ----

describe('bad input never gets a 5xx, always an OCI error body, and never reaches an unconfigured host', () => {
  it('reads: arbitrary names, references, digests, ns=, n and last', async () => {
    const read = fc.record({
      method: fc.constantFrom('GET', 'HEAD'),
      endpoint: fc.constantFrom('manifest', 'blob', 'tags', 'referrers', 'catalog', 'base', 'upload'),
      name: repoName(),
      reference: reference(),
      digest: digest(),
      id: fc.oneof(fc.uuid(), segment()),
      ns: namespace(),
      n: fc.option(queryValue, { nil: undefined }),
      last: fc.option(queryValue, { nil: undefined }),
      artifactType: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(read, async (r) => {
        const q = query({ ns: r.ns, n: r.n, last: r.last, artifactType: r.artifactType });
        const path = {
          manifest: `/v2/${r.name}/manifests/${r.reference}`,
          blob: `/v2/${r.name}/blobs/${r.digest}`,
          tags: `/v2/${r.name}/tags/list`,
          referrers: `/v2/${r.name}/referrers/${r.digest}`,
          catalog: '/v2/_catalog',
          base: '/v2/',
          upload: `/v2/${r.name}/blobs/uploads/${r.id}`,
        }[r.endpoint];
        await sendChecked({ method: r.method, path: `${path}${q}` });
      }),
      runs(1000),
    );
    printTally('reads');
    expectNoAttackerContact();
    expectCleanUpstreamRequests();
  });

  it('writes and deletes: uploads with mount, from and digest, manifest and blob DELETEs, odd methods', async () => {
    const write = fc.record({
      kind: fc.constantFrom(
        'post',
        'put-upload',
        'patch-upload',
        'delete-blob',
        'delete-manifest',
        'delete-upload',
        'odd',
      ),
      name: repoName(),
      reference: reference(),
      digest: digest(),
      mount: fc.option(digest(), { nil: undefined }),
      from: fc.option(repoName(), { nil: undefined }),
      digestParam: fc.option(digest(), { nil: undefined }),
      digestOfBody: fc.boolean(),
      algorithm: fc.option(fc.constantFrom('sha256', 'sha512', 'md5', ''), { nil: undefined }),
      id: fc.oneof(fc.uuid(), segment()),
      body: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
      method: fc.constantFrom('OPTIONS', 'TRACE', 'PROPFIND', 'PATCH', 'POST', 'PUT', 'DELETE', 'MKCOL'),
      path: fc.oneof(
        repoName().map((n) => `/v2/${n}`),
        fc.constantFrom('/v2', '/v2/', '/', '/v1/', '/v2/_catalog', '/v2//', '/V2/'),
      ),
    });
    await fc.assert(
      fc.asyncProperty(write, async (w) => {
        const body = w.body === undefined ? undefined : Buffer.from(w.body);
        const octet = { 'Content-Type': 'application/octet-stream' };
        const req: Sent = {
          post: {
            method: 'POST',
            path: `/v2/${w.name}/blobs/uploads/${query({
              mount: w.mount,
              from: w.from,
              digest: w.digestOfBody && body !== undefined ? sha256(body) : w.digestParam,
              'digest-algorithm': w.algorithm,
            })}`,
            headers: octet,
            body,
          },
          'put-upload': {
            method: 'PUT',
            path: `/v2/${w.name}/blobs/uploads/${w.id}${query({ digest: w.digestParam })}`,
            headers: octet,
            body,
          },
          'patch-upload': { method: 'PATCH', path: `/v2/${w.name}/blobs/uploads/${w.id}`, headers: octet, body },
          'delete-blob': { method: 'DELETE', path: `/v2/${w.name}/blobs/${w.digest}` },
          'delete-manifest': { method: 'DELETE', path: `/v2/${w.name}/manifests/${w.reference}` },
          'delete-upload': { method: 'DELETE', path: `/v2/${w.name}/blobs/uploads/${w.id}` },
          odd: { method: w.method, path: w.path, body },
        }[w.kind];
        await sendChecked(req);
      }),
      runs(1000),
    );
    printTally('writes');
    expectNoAttackerContact();
    expectCleanUpstreamRequests();
  });

  it('Range: any header gives the whole blob, the exact slice it names, or 416', async () => {
    const size = rangeBlob.length;
    const bound = fc.oneof(
      fc.integer({ min: 0, max: size + 10 }).map(String),
      fc.constantFrom('', '-1', '00', '9'.repeat(25), '1e3', ' 5'),
    );
    const rangeHeader = fc.oneof(
      fc.tuple(bound, bound).map(([a, b]) => `bytes=${a}-${b}`),
      fc.tuple(bound, bound, bound, bound).map(([a, b, c, d]) => `bytes=${a}-${b},${c}-${d}`),
      fc
        .tuple(fc.constantFrom('bytes', 'Bytes', 'items', 'bytes ', ''), bound, bound)
        .map(([u, a, b]) => `${u}=${a}-${b}`),
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'HEAD'), rangeHeader, async (method, range) => {
        const req = { method, path: `/v2/${rangeRepo}/blobs/${rangeDigest}`, headers: { Range: range } };
        const answer = await sendChecked(req);
        const where = describeRequest(req, answer);
        expect([200, 206, 416], where).toContain(answer.status);
        const wellFormed = /^bytes=(\d+)-(\d+)$/.exec(range);
        if (wellFormed !== null && Number(wellFormed[1]) <= Number(wellFormed[2]) && Number(wellFormed[1]) < size) {
          expect(answer.status, where).toBe(206);
        }
        if (answer.status === 206) {
          const [, start, end, total] =
            /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(answer.headers['content-range'])) ?? [];
          expect(Number(total), where).toBe(size);
          const slice = rangeBlob.subarray(Number(start), Number(end) + 1);
          expect(Number(answer.headers['content-length']), where).toBe(slice.length);
          if (method === 'GET') expect(answer.body.equals(slice), where).toBe(true);
        } else if (answer.status === 200 && method === 'GET') {
          expect(answer.body.equals(rangeBlob), where).toBe(true);
        } else if (answer.status === 416) {
          expect(answer.headers['content-range'], where).toBe(`bytes */${size}`);
        }
      }),
      runs(500),
    );
    printTally('range');
  });

  it('Content-Range: a chunk is taken whole at the end of the upload or refused, never half-counted', async () => {
    const bound = fc.oneof(
      fc.integer({ min: 0, max: 100 }).map(String),
      fc.constantFrom('', '-1', '9'.repeat(25), '1e2', '0x1'),
    );
    const contentRange = fc.oneof(
      fc.tuple(bound, bound).map(([a, b]) => `${a}-${b}`),
      fc.tuple(bound, bound).map(([a, b]) => `bytes ${a}-${b}/*`),
      fc.tuple(bound, bound).map(([a, b]) => `bytes=${a}-${b}`),
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 }),
    );
    // Half the runs send the header that matches the body, so the accepting path runs too.
    const chunk = fc
      .uint8Array({ maxLength: 64 })
      .chain((bytes) =>
        fc.tuple(
          fc.constant(bytes),
          fc.oneof(
            { weight: 3, arbitrary: fc.constantFrom(`0-${bytes.length - 1}`, `bytes 0-${bytes.length - 1}/*`) },
            { weight: 3, arbitrary: contentRange },
          ),
        ),
      );
    await fc.assert(
      fc.asyncProperty(chunk, async ([bytes, header]) => {
        const start = await sendChecked({ method: 'POST', path: '/v2/chunks/app/blobs/uploads/' });
        expect(start.status).toBe(202);
        const location = String(start.headers.location);
        const body = Buffer.from(bytes);
        const req = {
          method: 'PATCH',
          path: location,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': header },
          body,
        };
        const answer = await sendChecked(req);
        const where = describeRequest(req, answer);
        const status = await sendChecked({ method: 'GET', path: location });
        expect(status.status, where).toBe(204);
        const committed = answer.status === 202 ? body.length : 0;
        expect(status.headers.range, where).toBe(`0-${Math.max(committed - 1, 0)}`);
        if (answer.status === 202) {
          // Taken: the upload closes with exactly these bytes.
          const put = await sendChecked({ method: 'PUT', path: `${location}?digest=${sha256(body)}` });
          expect(put.status, where).toBe(201);
        } else {
          expect([400, 416], where).toContain(answer.status);
          await sendChecked({ method: 'DELETE', path: location });
        }
      }),
      runs(300),
    );
    printTally('content-range');
  });

  it('manifest JSON: arbitrary and near-valid manifests are stored byte for byte or refused with a 4xx', async () => {
    const mediaType = fc.oneof(
      fc.constantFrom(
        ociManifest,
        ociIndex,
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
        'application/vnd.oci.image.layer.nondistributable.v1.tar',
        'application/json',
        '',
      ),
      fc.string({ maxLength: 40 }),
    );
    const jsonish = fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.double(), fc.constant(null), fc.boolean());
    const descriptor = fc.oneof(
      fc.constantFrom(known.config, known.layer),
      fc.record(
        {
          mediaType: fc.oneof(mediaType, jsonish),
          digest: fc.oneof(digest(), jsonish),
          size: fc.oneof(
            fc.nat(),
            fc.integer(),
            fc.double(),
            fc.constantFrom(known.config.size, -1, 2 ** 53 + 2, 1e308),
            jsonish,
          ),
          urls: fc.oneof(fc.array(fc.webUrl(), { maxLength: 2 }), jsonish),
          annotations: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), jsonish, { maxKeys: 3 }), jsonish),
          artifactType: fc.oneof(mediaType, jsonish),
          platform: fc.oneof(
            fc.record({ os: fc.string({ maxLength: 8 }), architecture: fc.string({ maxLength: 8 }) }),
            jsonish,
          ),
        },
        { requiredKeys: [] },
      ),
    );
    const nearValid = fc.record(
      {
        schemaVersion: fc.oneof(fc.constantFrom(2, 1, 3, '2'), jsonish),
        mediaType,
        config: fc.oneof(descriptor, jsonish),
        layers: fc.oneof(fc.array(descriptor, { maxLength: 3 }), jsonish),
        manifests: fc.oneof(fc.array(descriptor, { maxLength: 3 }), jsonish),
        subject: fc.oneof(descriptor, jsonish),
        annotations: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), jsonish, { maxKeys: 3 }), jsonish),
        artifactType: fc.oneof(mediaType, jsonish),
        fsLayers: fc.array(fc.record({ blobSum: digest() }), { maxLength: 2 }),
      },
      { requiredKeys: [] },
    );
    /** Valid manifests (image, index, Docker schema2) with up to two fields replaced or removed. */
    const dockerManifest = 'application/vnd.docker.distribution.manifest.v2+json';
    const bases: Record<string, () => Record<string, unknown>> = {
      [ociManifest]: () => ({ schemaVersion: 2, mediaType: ociManifest, config: known.config, layers: [known.layer] }),
      [ociIndex]: () => ({ schemaVersion: 2, mediaType: ociIndex, manifests: [knownChild] }),
      [dockerManifest]: () => ({
        schemaVersion: 2,
        mediaType: dockerManifest,
        config: { ...known.config, mediaType: 'application/vnd.docker.container.image.v1+json' },
        layers: [{ ...known.layer, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }],
      }),
    };
    const mutation = fc.tuple(
      fc.constantFrom(
        'schemaVersion',
        'mediaType',
        'config',
        'config.digest',
        'config.size',
        'config.mediaType',
        'layers',
        'layers.0',
        'layers.0.digest',
        'layers.0.size',
        'layers.0.urls',
        'layers.0.mediaType',
        'manifests',
        'manifests.0.digest',
        'manifests.0.platform',
        'subject',
        'subject.digest',
        'annotations',
        'artifactType',
      ),
      fc.oneof(jsonish, digest(), mediaType, descriptor, fc.constant(undefined)),
    );
    const validish = fc
      .tuple(fc.constantFrom(...Object.keys(bases)), fc.array(mutation, { maxLength: 2 }), fc.boolean())
      .map(([type, mutations, withSubject]) => {
        // Clones throughout: the known descriptors are shared and must never be mutated.
        const manifest = structuredClone(bases[type]?.() ?? {});
        if (withSubject) manifest['subject'] = knownChild;
        for (const [path, value] of mutations) setPath(manifest, path, value);
        return { text: JSON.stringify(manifest), type };
      });
    const body = fc.oneof(
      { weight: 6, arbitrary: validish },
      { weight: 2, arbitrary: nearValid.map((m) => ({ text: JSON.stringify(m), type: undefined })) },
      { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((text) => ({ text, type: undefined })) },
      { weight: 1, arbitrary: validish.map((m) => ({ text: m.text.slice(0, -1), type: m.type })) },
      {
        weight: 1,
        arbitrary: fc
          .uint8Array({ maxLength: 200 })
          .map((b) => ({ text: Buffer.from(b).toString('latin1'), type: undefined })),
      },
    );
    // The type the body claims (mostly), another one, or none.
    const contentType = fc.oneof(
      { weight: 3, arbitrary: fc.constant('claimed') },
      { weight: 1, arbitrary: mediaType },
      { weight: 1, arbitrary: fc.constant(undefined) },
    );
    const target = fc.constantFrom('tag', 'tag', 'digest', 'wrong-digest');
    await fc.assert(
      fc.asyncProperty(body, contentType, target, async ({ text, type: claimed }, sent, by) => {
        const type = sent === 'claimed' ? (claimed ?? ociManifest) : sent;
        const bytes = Buffer.from(text, 'utf8');
        const reference = by === 'tag' ? 'prop' : by === 'digest' ? sha256(bytes) : sha256(`${text}!`);
        const req = {
          method: 'PUT',
          path: `/v2/manifests/app/manifests/${reference}`,
          headers: type === undefined ? ({} as Record<string, string>) : { 'Content-Type': type },
          body: bytes,
        };
        const answer = await sendChecked(req);
        const where = describeRequest(req, answer);
        expect(answer.status === 201 || (answer.status >= 400 && answer.status < 500), where).toBe(true);
        if (by === 'wrong-digest') expect(answer.status, where).not.toBe(201);
        if (answer.status !== 201) return;
        const stored = String(answer.headers['docker-content-digest']);
        expect(stored, where).toBe(sha256(bytes));
        const back = await sendChecked({ method: 'GET', path: `/v2/manifests/app/manifests/${stored}` });
        expect(back.status, where).toBe(200);
        expect(back.body.equals(bytes), where).toBe(true);
        await sendChecked({ method: 'GET', path: `/v2/manifests/app/referrers/${known.config.digest}` });
      }),
      runs(1000),
    );
    printTally('manifests');
    expectNoAttackerContact();
  });

  it('a request target or Host the HTTP adaptor cannot read still gets an OCI JSON 400', async () => {
    // @hono/node-server refuses these before wharf's app sees them; without an errorHandler the
    // client gets a bare 400 with an empty text/plain body.
    const cases: Sent[] = [
      { method: 'GET', path: '/v2/a\\b/tags/list' },
      { method: 'GET', path: '/v2/', headers: { host: 'bad host' } },
      { method: 'GET', path: '/v2/library/x/manifests/latest', headers: { host: `127.0.0.1:${attackerPort}@evil` } },
    ];
    const answers: string[] = [];
    for (const req of cases) {
      const answer = await send(req);
      answers.push(`${describeRequest(req, answer)} (${String(answer.headers['content-type'])})`);
    }
    const bare = answers.filter((a) => !a.endsWith('(application/json)'));
    expect(bare, 'answers without an OCI JSON error body').toEqual([]);
    expectNoAttackerContact();
  });

  it('names the attacker every way on every endpoint without a single connection to it', async () => {
    const p = attackerPort;
    const names = [
      `127.0.0.1:${p}/x`,
      `127.0.0.1-${p}/x`,
      `localhost-${p}/x`,
      `127.0.0.1%3a${p}/x`,
      `${upstreamHost}/..%2f127.0.0.1:${p}/x`,
      'library/x',
    ];
    const namespaces = [`127.0.0.1:${p}`, `127.0.0.1-${p}`, `localhost:${p}`, `http://127.0.0.1:${p}`, `[::1]:${p}`];
    const d = sha256('anything');
    for (const name of names) {
      for (const ns of [undefined, ...namespaces]) {
        const q = query({ ns });
        for (const path of [
          `/v2/${name}/manifests/latest${q}`,
          `/v2/${name}/manifests/${d}${q}`,
          `/v2/${name}/blobs/${d}${q}`,
          `/v2/${name}/tags/list${q}`,
          `/v2/${name}/referrers/${d}${q}`,
        ]) {
          await sendChecked({ method: 'GET', path });
          await sendChecked({ method: 'HEAD', path });
        }
        await sendChecked({
          method: 'POST',
          path: `/v2/local/app/blobs/uploads/?mount=${d}&from=${encodeURIComponent(name)}`,
        });
      }
    }
    expectNoAttackerContact();
  });
});
