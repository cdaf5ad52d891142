/**
 * Corruption (issue 9): `wharf verify --repair` quarantines blob files whose
 * bytes do not match and drops rows whose file is missing, so a mirrored blob
 * is fetched again from the upstream (CNCF distribution) on the next pull; a
 * corrupt pushed blob is one `error:` line and exit 1; --repair refuses beside
 * a running serve. And serve itself never completes a blob that fails
 * verification: a small one is fetched again at once, a large one is cut
 * before its last chunk and fetched again on the retry.
 */
import { access, mkdtemp, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { countRequests } from './support/access-log.js';
import { cutOrThrow } from './support/cut-or-timeout.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { captureLog } from './support/log-capture.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const clientTimeoutMs = 120_000;

let upstream: DistributionHandle;
let workDir: string;
const images = new Map<string, TestImage>();

function imageOf(repo: string): TestImage {
  const image = images.get(repo);
  if (image === undefined) throw new Error(`no image for ${repo}`);
  return image;
}

/**
 * Puts the same bytes with one flipped under the blob's path as a new file (a new inode), with the
 * old file's modification time, as a restore from backup or a careless copy would.
 */
async function replaceWithCorrupt(path: string, at: number): Promise<void> {
  const before = await stat(path, { bigint: true });
  const bytes = await readFile(path);
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  const temp = `${path}.replacement`;
  await writeFile(temp, bytes);
  // touch keeps nanoseconds (utimensat); fs.utimes would round them.
  await run('touch', ['-r', path, temp], { timeoutMs: 10_000 });
  await rename(temp, path);
  const after = await stat(path, { bigint: true });
  expect([after.ino !== before.ino, after.mtimeNs, after.size]).toEqual([true, before.mtimeNs, before.size]);
}

function layersOf(image: TestImage): string[] {
  return image.images[0]?.layers.map((l) => l.digest) ?? [];
}

function configOf(image: TestImage): string {
  const config = image.images[0]?.config.digest;
  if (config === undefined) throw new Error('image without config');
  return config;
}

/** A fill's response ends before its file is committed: wait for the file. */
/**
 * Waits until a fill committed `path` and wrote its index row (`indexed`): the file is renamed first
 * and the row written after, and until the row is there a read joins the fill instead of the store.
 */
async function committed(path: string, indexed: () => boolean): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const there = await access(path).then(
      () => true,
      () => false,
    );
    if (there && indexed()) return path;
    if (Date.now() > deadline) throw new Error(`deadline: ${path} never committed and indexed`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function skopeoCopy(source: string, dir: string): Promise<void> {
  await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${source}`, `oci:${dir}:v1`], {
    timeoutMs: clientTimeoutMs,
  });
}

/** A blob GET through wharf: the body when it ended cleanly, or 'cut'. */
async function getBlob(base: string, path: string): Promise<{ status: number; body: Buffer | 'cut' }> {
  const response = await request(`${base}${path}`, { headersTimeout: 30_000, bodyTimeout: 30_000 });
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
  } catch (error) {
    return { status: response.statusCode, body: cutOrThrow(error, `GET ${path}`) };
  }
  return { status: response.statusCode, body: Buffer.concat(chunks) };
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'wharf-repair-'));
  upstream = await startDistribution();
  for (const repo of ['repair/cli', 'repair/serve', 'repair/trust']) {
    // Layers over 1 MiB: checked while streaming, not read whole (store/verified-read.ts).
    const image = await makeImage({ seed: testSeed(`repair ${repo}`), layers: 2, layerSize: 2_500_000 });
    images.set(repo, image);
    await pushTestImage(upstream.url, repo, 'v1', image);
  }
}, 120_000);

afterAll(async () => {
  await upstream?.close();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
}, 60_000);

describe.sequential('wharf verify --repair', () => {
  it(
    'a flipped byte and a removed file in mirrored layers: repaired, then skopeo pulls them again from the upstream',
    async () => {
      const image = imageOf('repair/cli');
      const [flipped, removed] = layersOf(image);
      if (flipped === undefined || removed === undefined) throw new Error('two layers expected');
      const dataDir = join(workDir, 'cli-data');
      const source = (wharf: WharfHandle): string => `${wharf.host}/${registryHost}/repair/cli:v1`;
      const upstreams = [{ host: registryHost, url: upstream.url }];
      let wharf = await startWharf({ dataDir, upstreams });
      try {
        await skopeoCopy(source(wharf), join(workDir, 'cli-first'));
      } finally {
        await wharf.close();
      }
      await flipByte(blobPath(dataDir, flipped), 1000);
      await rm(blobPath(dataDir, removed));

      const repair = await runWharf(['verify', '--repair', '--data', dataDir], {
        env: { WHARF_UPSTREAMS: `${registryHost}=${upstream.url}` },
        timeoutMs: 60_000,
      });
      expect(repair.stderr).toBe('');
      expect(repair.code).toBe(0);
      const repaired = repair.stdout.split('\n').filter((l) => l.startsWith('repaired: '));
      expect(repaired).toHaveLength(2);
      expect(repaired).toEqual(
        expect.arrayContaining([
          expect.stringContaining(`repaired: blob ${flipped}: its bytes do not match its digest; moved to quarantine/`),
          expect.stringContaining(`repaired: blob ${removed}: its file is missing; its index rows dropped`),
        ]),
      );
      for (const line of repaired)
        expect(line).toContain(`(in ${registryHost}/repair/cli); fetched again from the upstream`);
      const quarantined = await readdir(join(dataDir, 'quarantine'));
      expect(quarantined).toEqual([expect.stringMatching(new RegExp(`^sha256-${flipped.slice(7)}-\\d+$`))]);
      // The store is consistent again.
      expect((await runWharf(['verify', '--data', dataDir])).code).toBe(0);

      wharf = await startWharf({ dataDir, upstreams });
      try {
        const out = join(workDir, 'cli-second');
        await skopeoCopy(source(wharf), out);
        for (const digest of [flipped, removed]) {
          const pulled = await readFile(join(out, 'blobs', 'sha256', digest.slice(7)));
          expect(pulled.equals(image.blobs.get(digest) as Buffer), digest).toBe(true);
        }
      } finally {
        await wharf.close();
      }
      const logs = await upstream.settledLogs();
      for (const digest of [flipped, removed]) {
        expect(countRequests(logs, 'GET', `/v2/repair/cli/blobs/${digest}`), digest).toBe(2);
      }
      expect(countRequests(logs, 'GET', `/v2/repair/cli/blobs/${configOf(image)}`)).toBe(1);
      await rm(dataDir, { recursive: true, force: true });
    },
    clientTimeoutMs * 3,
  );

  it('a corrupt pushed blob is one error line and exit 1; the image stays, its tag listed', async () => {
    const dataDir = join(workDir, 'pushed-data');
    const image = await makeImage({ seed: testSeed('repair pushed'), layers: 1 });
    const wharf = await startWharf({ dataDir });
    try {
      await pushTestImage(wharf.url, 'team/app', 'v1', image);
    } finally {
      await wharf.close();
    }
    const [layer] = layersOf(image);
    if (layer === undefined) throw new Error('one layer expected');
    await flipByte(blobPath(dataDir, layer), 10);

    const repair = await runWharf(['verify', '--repair', '--data', dataDir]);
    expect(repair.code).toBe(1);
    expect(repair.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: blob ${layer}: its bytes do not match its digest; moved to quarantine/sha256-\\w+-\\d+ \\(in team/app\\); ` +
            'pushed or imported content no upstream has: push or import it again; pulls of team/app:v1 \\(pushed\\) fail until then$',
        ),
      ),
    ]);
    expect(repair.stdout).toMatch(/^result: 1 blob quarantined \(0 repaired, 1 lost until pushed again\)/m);
    expect(await readdir(join(dataDir, 'quarantine'))).toHaveLength(1);
    // The manifest and its tag stay (re-pushing the blob makes the image whole again).
    const ls = await runWharf(['ls', '--data', dataDir]);
    expect(ls.stdout).toContain('team/app');
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  // Round 2 of the planted-bug audit (docs/mutation-testing.md): --repair that left files of the
  // wrong size alone passed every test, which only flipped bytes or removed files.
  it('a truncated pushed blob (wrong size) is quarantined too: one error line and exit 1, then verify is clean', async () => {
    const dataDir = join(workDir, 'truncated-data');
    const image = await makeImage({ seed: testSeed('repair truncated'), layers: 1 });
    const wharf = await startWharf({ dataDir });
    try {
      await pushTestImage(wharf.url, 'team/short', 'v1', image);
    } finally {
      await wharf.close();
    }
    const [layer] = layersOf(image);
    if (layer === undefined) throw new Error('one layer expected');
    await truncate(blobPath(dataDir, layer), 100);

    const repair = await runWharf(['verify', '--repair', '--data', dataDir]);
    expect(repair.code).toBe(1);
    expect(repair.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: blob ${layer}: its file has the wrong size; moved to quarantine/sha256-\\w+-\\d+ \\(in team/short\\); `,
        ),
      ),
    ]);
    expect(repair.stdout).toMatch(/^result: 1 blob quarantined \(0 repaired, 1 lost until pushed again\)/m);
    const quarantined = await readdir(join(dataDir, 'quarantine'));
    expect(quarantined).toEqual([expect.stringMatching(new RegExp(`^sha256-${layer.slice(7)}-\\d+$`))]);
    expect((await stat(join(dataDir, 'quarantine', quarantined[0] ?? ''))).size).toBe(100);
    const verify = await runWharf(['verify', '--data', dataDir]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('refuses beside a running serve, which holds the data directory', async () => {
    const wharf = await startWharf();
    try {
      const repair = await runWharf(['verify', '--repair', '--data', wharf.dataDir]);
      expect(repair.code).toBe(1);
      expect(repair.stderr).toMatch(
        /^error: verify --repair changes the store and needs it to itself: data directory .* is in use by wharf \(pid \d+\)/,
      );
      // Plain verify still runs beside it.
      expect((await runWharf(['verify', '--data', wharf.dataDir])).code).toBe(0);
    } finally {
      await wharf.close();
    }
  }, 60_000);
});

describe.sequential('serve checks blobs as it reads them', () => {
  it(
    'a corrupt mirrored blob is never completed: small ones are fetched again at once, large ones on the retry',
    async () => {
      const image = imageOf('repair/serve');
      const [layer] = layersOf(image);
      if (layer === undefined) throw new Error('a layer expected');
      const config = configOf(image);
      const log = captureLog('warn');
      const wharf = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url }], logger: log.logger });
      const path = (digest: string): string => `/v2/${registryHost}/repair/serve/blobs/${digest}`;
      try {
        for (const digest of [config, layer]) {
          const first = await getBlob(wharf.url, path(digest));
          expect(first.body !== 'cut' && first.body.equals(image.blobs.get(digest) as Buffer)).toBe(true);
        }
        const store = wharf.server.store;
        await flipByte(await committed(blobPath(wharf.dataDir, config), () => store.hasBlob(config as Digest)), 5);
        await flipByte(
          await committed(blobPath(wharf.dataDir, layer), () => store.hasBlob(layer as Digest)),
          2_000_000,
        );

        const small = await getBlob(wharf.url, path(config));
        expect(small.status).toBe(200);
        expect(small.body !== 'cut' && small.body.equals(image.blobs.get(config) as Buffer)).toBe(true);

        const large = await getBlob(wharf.url, path(layer));
        expect(large).toEqual({ status: 200, body: 'cut' });
        const retry = await getBlob(wharf.url, path(layer));
        expect(retry.body !== 'cut' && retry.body.equals(image.blobs.get(layer) as Buffer)).toBe(true);

        const logs = await upstream.settledLogs();
        expect(countRequests(logs, 'GET', `/v2/repair/serve/blobs/${config}`)).toBe(2);
        expect(countRequests(logs, 'GET', `/v2/repair/serve/blobs/${layer}`)).toBe(2);
        const warnings = log.atLeast(40).filter((l) => l.msg?.startsWith('blob failed verification on read'));
        expect(warnings.map((l) => [l['digest'], l['kind']])).toEqual([
          [config, 'refetchable'],
          [layer, 'refetchable'],
        ]);
        expect(await readdir(join(wharf.dataDir, 'quarantine'))).toHaveLength(2);
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs,
  );

  it(
    'a blob read whole once is trusted while its file is unchanged; a file replaced by corrupt bytes under a new inode is caught on the next read',
    async () => {
      const image = imageOf('repair/trust');
      const [layer] = layersOf(image);
      if (layer === undefined) throw new Error('a layer expected');
      const config = configOf(image);
      const wharf = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url }] });
      const path = (digest: string): string => `/v2/${registryHost}/repair/trust/blobs/${digest}`;
      const counts = wharf.server.store.verified.counts;
      const whole = async (digest: string): Promise<void> => {
        const answer = await getBlob(wharf.url, path(digest));
        expect(answer.body !== 'cut' && answer.body.equals(image.blobs.get(digest) as Buffer)).toBe(true);
      };
      try {
        for (const digest of [config, layer]) {
          await whole(digest); // the fill, hashed on the way in
          await committed(blobPath(wharf.dataDir, digest), () => wharf.server.store.hasBlob(digest as Digest));
        }
        for (const digest of [config, layer]) await whole(digest); // first reads of the files: hashed
        expect(counts).toEqual({ hashed: 2, trusted: 0, joined: 0, own: 0 });
        for (const digest of [config, layer]) await whole(digest); // same files: trusted
        expect(counts).toEqual({ hashed: 2, trusted: 2, joined: 0, own: 0 });

        await replaceWithCorrupt(blobPath(wharf.dataDir, config), 5);
        await replaceWithCorrupt(blobPath(wharf.dataDir, layer), 2_000_000);
        // Small: quarantined and fetched again within the request.
        await whole(config);
        // Large: cut before its last chunk, fetched again on the retry.
        expect(await getBlob(wharf.url, path(layer))).toEqual({ status: 200, body: 'cut' });
        await whole(layer);
        expect(counts.trusted).toBe(2);
        expect(await readdir(join(wharf.dataDir, 'quarantine'))).toHaveLength(2);
        const logs = await upstream.settledLogs();
        expect(countRequests(logs, 'GET', `/v2/repair/trust/blobs/${config}`)).toBe(2);
        expect(countRequests(logs, 'GET', `/v2/repair/trust/blobs/${layer}`)).toBe(2);
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs,
  );

  it('a corrupt pushed blob is answered BLOB_UNKNOWN and logged as an error, never served', async () => {
    const log = captureLog('warn');
    const wharf = await startWharf({ logger: log.logger });
    try {
      const image = await makeImage({ seed: testSeed('repair serve pushed'), layers: 1 });
      await pushTestImage(wharf.url, 'team/app', 'v1', image);
      const config = configOf(image);
      await flipByte(blobPath(wharf.dataDir, config), 3);
      const answer = await getBlob(wharf.url, `/v2/team/app/blobs/${config}`);
      expect(answer.status).toBe(404);
      expect(JSON.parse(String(answer.body))).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
      const errors = log.atLeast(50);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ digest: config, kind: 'lost' });
      expect(errors[0]?.msg).toContain('push or import it again; pulls of team/app:v1 (pushed) fail until then');
    } finally {
      await wharf.close();
    }
  }, 60_000);
});
