/**
 * The background scrub (issue 9, ADR 0013): serve re-hashes blob files at a bounded rate, oldest
 * verified first, and quarantines what fails through the same path as a verified read. A mirrored
 * layer nobody reads is found, quarantined and fetched again from CNCF distribution by the next
 * pull; a pushed one is an `error` line saying it is lost. The rate is checked as bytes per tick
 * (the scrub's unit of budget), not as wall-clock time.
 */
import { access, appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseDigest, type Digest } from '../src/oci/digest.js';
import type { RepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import type { QuarantineResult } from '../src/store/quarantine.js';
import { countRequests } from './support/access-log.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { captureLog } from './support/log-capture.js';
import { makeImage, randomBytesFor, sha256Digest, testSeed } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const clientTimeoutMs = 120_000;
const registryHost = 'registry.example.test';

function digestOf(bytes: Buffer): Digest {
  const digest = parseDigest(sha256Digest(bytes));
  if (digest === undefined) throw new Error('bad digest');
  return digest;
}

async function* chunks(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Rows written in this millisecond are not yet due with interval 0 (due means verified before the tick began). */
async function nextMillisecond(): Promise<void> {
  const now = Date.now();
  while (Date.now() === now) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** Polls `check` until it holds; fails with `what` after the deadline. */
async function eventually(what: string, check: () => Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`deadline: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function metric(wharf: WharfHandle, name: string): Promise<number> {
  const response = await fetch(`${wharf.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const line = (await response.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

describe('the scrub of one store', () => {
  let root: string;
  let store: LocalStore;
  const quarantined: QuarantineResult[] = [];
  const name = 'team/app' as RepoName;
  const big = randomBytesFor(testSeed('scrub big'), 300 * 1024);
  const small = randomBytesFor(testSeed('scrub small'), 40 * 1024);
  const empty = Buffer.alloc(0);
  const rateBytes = 64 * 1024;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-scrub-'));
    quarantined.length = 0;
    store = await LocalStore.open(root, { onQuarantine: (result) => quarantined.push(result) });
    for (const bytes of [big, small, empty]) {
      await store.putBlob(name, digestOf(bytes), chunks(bytes), bytes.byteLength);
      await nextMillisecond();
    }
  });

  afterEach(async () => {
    store.close();
    await rm(root, { recursive: true, force: true });
  });

  it('hashes at most rate × tick bytes per tick, oldest verified first, across ticks for a large blob', async () => {
    const scrub = store.createScrub({ rateBytes, intervalMs: 0 });
    const db = new Database(join(root, 'index.db'), { readonly: true });
    const verified = db.prepare<[], { digest: string }>('SELECT digest FROM blobs WHERE verified_at IS NOT NULL');
    const total = big.byteLength + small.byteLength;
    const perTick: number[] = [];
    /** The tick in which each blob was first stamped verified. */
    const verifiedInTick = new Map<string, number>();
    try {
      while (scrub.stats.blobs < 3) {
        if (perTick.length > 20) throw new Error(`no full pass after 20 ticks: ${JSON.stringify(scrub.stats)}`);
        // A blob finished in one tick is due again in the next only if that tick starts in a later
        // millisecond (verified_at < tick start): ticks a second apart always do, back-to-back calls here may not.
        await nextMillisecond();
        const before = scrub.stats.bytes;
        const spent = await scrub.tick(1000);
        expect(scrub.stats.bytes - before).toBe(spent);
        perTick.push(spent);
        for (const { digest } of verified.all())
          if (!verifiedInTick.has(digest)) verifiedInTick.set(digest, perTick.length);
      }
    } finally {
      db.close();
    }
    // With interval 0 there is always work (a pass starts again at once), so every tick uses its
    // whole budget and no more: the bound is the rate, not some lower pace.
    expect(perTick).toEqual(perTick.map(() => rateBytes));
    expect(perTick).toHaveLength(Math.ceil(total / rateBytes));
    expect(scrub.stats).toEqual({ bytes: perTick.length * rateBytes, blobs: 3, corrupt: 0 });
    // Written first, so due first; it spans five ticks of 64 KiB.
    expect(verifiedInTick.get(digestOf(big))).toBe(Math.ceil(big.byteLength / rateBytes));
    expect(verifiedInTick.get(digestOf(small))).toBeGreaterThan(verifiedInTick.get(digestOf(big)) ?? Infinity);
    // Half a second's tick has half the budget.
    expect(await scrub.tick(500)).toBe(rateBytes / 2);
    await scrub.close();
    expect(quarantined).toEqual([]);
  });

  it('quarantines a flipped byte through the verified-read path, and leaves recently verified blobs alone', async () => {
    await flipByte(blobPath(root, digestOf(small)), 1000);
    const scrub = store.createScrub({ rateBytes: 1024 * 1024, intervalMs: 0 });
    await scrub.tick(1000);
    expect(scrub.stats).toEqual({ bytes: big.byteLength + small.byteLength, blobs: 3, corrupt: 1 });
    expect(quarantined.map((q) => [q.digest, q.reason, q.foundBy])).toEqual([
      [digestOf(small), 'digest-mismatch', 'scrub'],
    ]);
    expect(store.hasBlob(digestOf(small))).toBe(false);
    expect(await readdir(join(root, 'quarantine'))).toHaveLength(1);
    // The stored total lost the blob's bytes (Lifecycle.quarantine), as for a quarantine on read.
    expect(store.health.currentUsage().bytes).toBe(big.byteLength);
    await scrub.close();

    // Everything left was verified just now: with a day's interval nothing is due.
    const daily = store.createScrub({ rateBytes: 1024 * 1024, intervalMs: 24 * 60 * 60 * 1000 });
    expect(await daily.tick(1000)).toBe(0);
    await daily.close();
  });

  it('quarantines a file longer than its row as size-mismatch, though its first bytes hash right', async () => {
    await appendFile(blobPath(root, digestOf(small)), Buffer.from('x'));
    const scrub = store.createScrub({ rateBytes: 1024 * 1024, intervalMs: 0 });
    await scrub.tick(1000);
    expect(quarantined.map((q) => [q.digest, q.reason, q.foundBy])).toEqual([
      [digestOf(small), 'size-mismatch', 'scrub'],
    ]);
    expect(scrub.stats).toMatchObject({ blobs: 3, corrupt: 1 });
    expect(store.hasBlob(digestOf(small))).toBe(false);
    await scrub.close();
  });
});

describe.sequential('serve with the scrub on', () => {
  let origin: DistributionHandle;
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wharf-scrub-serve-'));
    origin = await startDistribution();
  }, 120_000);

  afterAll(async () => {
    await origin?.close();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it(
    'quarantines a mirrored layer nobody reads; the next pull fetches it again from distribution',
    async () => {
      const image = await makeImage({ seed: testSeed('scrub mirrored'), layers: 2 });
      await pushTestImage(origin.url, 'scrub/app', 'v1', image);
      const log = captureLog('info');
      const wharf = await startWharf({
        upstreams: [{ host: registryHost, url: origin.url }],
        logger: log.logger,
        lifecycle: { scrubRateBytes: 64 * 1024 * 1024, scrubIntervalMs: 0 },
      });
      try {
        const source = `docker://${wharf.host}/${registryHost}/scrub/app:v1`;
        const copy = (dir: string): Promise<unknown> =>
          run('skopeo', ['copy', '--src-tls-verify=false', source, `oci:${join(workDir, dir)}:v1`], {
            timeoutMs: clientTimeoutMs,
          });
        await copy('first');
        const layer = image.images[0]?.layers[1]?.digest;
        if (layer === undefined) throw new Error('image without layers');
        const path = blobPath(wharf.dataDir, layer);
        await eventually(`${layer} committed`, () =>
          access(path).then(
            () => true,
            () => false,
          ),
        );
        await flipByte(path, 100);

        await eventually(
          'the scrub quarantines the layer',
          async () => !wharf.server.store.hasBlob(parseDigest(layer) as Digest),
        );
        await eventually(
          'the corrupt-blob counter moves',
          async () => (await metric(wharf, 'wharf_scrub_corrupt_blobs_total')) === 1,
        );
        expect(await metric(wharf, 'wharf_scrub_bytes_total')).toBeGreaterThan(0);
        const line = log.lines.find((l) => l['digest'] === layer && l['kind'] === 'refetchable');
        expect(line?.msg).toMatch(/failed verification in the background scrub: .*fetched again from the upstream/);
        expect(line?.level).toBe(40);

        await copy('second');
        const logs = await origin.settledLogs();
        expect(countRequests(logs, 'GET', `/v2/scrub/app/blobs/${layer}`)).toBe(2);
        // The other layer was never corrupt: fetched once.
        const other = image.images[0]?.layers[0]?.digest ?? '';
        expect(countRequests(logs, 'GET', `/v2/scrub/app/blobs/${other}`)).toBe(1);
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs * 3,
  );

  it(
    'logs a corrupt pushed blob as lost, at error, as verify --repair reports it',
    async () => {
      const image = await makeImage({ seed: testSeed('scrub pushed'), layers: 1 });
      const log = captureLog('info');
      const wharf = await startWharf({
        logger: log.logger,
        lifecycle: { scrubRateBytes: 64 * 1024 * 1024, scrubIntervalMs: 0 },
      });
      try {
        await pushTestImage(wharf.url, 'team/app', 'v1', image);
        const layer = image.images[0]?.layers[0]?.digest;
        if (layer === undefined) throw new Error('image without layers');
        await flipByte(blobPath(wharf.dataDir, layer), 10);
        await eventually('an error line for the pushed layer', async () =>
          log.lines.some((l) => l['digest'] === layer && l.level === 50),
        );
        const line = log.lines.find((l) => l['digest'] === layer && l.level === 50);
        expect(line?.['kind']).toBe('lost');
        expect(line?.msg).toMatch(
          /blob failed verification in the background scrub: .*pushed or imported content no upstream has: push or import it again; pulls of team\/app:v1 \(pushed\) fail until then/,
        );
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs,
  );
});
