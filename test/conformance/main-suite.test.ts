/**
 * @module test/conformance/main-suite.test
 * Port of the rewritten conformance suite on distribution-spec main (`conformance/run.go`):
 * ping, the empty repository, every blob push API for sha256 and sha512 (with HEAD, GET and
 * delete after each), Range requests, the empty and `{}` blobs, bad digests, every data set
 * (push by digest and tag, tag list, HEAD, GET, referrers, delete), and the manifest error cases.
 * Describe and `it` names are the suite's ChildRun names, so a failure maps back to it.
 *
 * Beyond the stable defaults this also runs what `OCI_VERSION=dev` enables: upload cancel
 * (DELETE of an upload → 204) and `?tag=` parameters on manifest PUT (end-7b, OCI-Tag).
 * Results the suite records as "unsupported" become skipped tests whose note says why; a Range
 * request answered with the full blob is a failure.
 *
 * Env: CONFORMANCE_URL, CONFORMANCE_SEED, OCI_REPO1 (conformance/repo1), OCI_REPO2
 * (conformance/repo2), OCI_VERSION=dev (also require Docker-Content-Digest on HEAD/GET), OCI_DATA_SPARSE=true
 * (the sparse data set against CONFORMANCE_URL; against wharf it always runs, with registry.sparseManifests on).
 */
import { afterAll, beforeAll, describe, it, type TestContext } from 'vitest';
import {
  ConformanceError,
  RegistryClient,
  Unsupported,
  describeResponse,
  expectBody,
  expectHeader,
  expectStatus,
  header,
  type RegistryResponse,
} from './client.js';
import { CHUNK_MIN, ConformanceApi, knownBlob, ociTags, type ReferrerEntry } from './main-suite-api.js';
import { generateDataSets, TestData, type Descriptor } from './main-suite-data.js';
import { SeededRandom, conformanceSeed } from './seeded-random.js';
import {
  TARGET_HOOK_TIMEOUT_MS,
  digestOf,
  startTarget,
  type ConformanceTarget,
  type DigestAlgorithm,
} from './target.js';

const TEST_TIMEOUT_MS = 180_000;

const seed = conformanceSeed();
console.log(`[conformance main] seed=${seed} (replay with CONFORMANCE_SEED=${seed})`);
const random = new SeededRandom(seed, 'main');
const repo = envOr('OCI_REPO1', 'conformance/repo1');
const repo2 = envOr('OCI_REPO2', 'conformance/repo2');
const devVersion = ['dev', '1.1+dev'].includes(process.env['OCI_VERSION'] ?? '');

// The sparse data set runs against wharf started with registry.sparseManifests (target.ts), or with OCI_DATA_SPARSE=true.
const sparse = process.env['OCI_DATA_SPARSE'] === 'true' || (process.env['CONFORMANCE_URL'] ?? '') === '';
const dataSets = generateDataSets(random, { tagParam: true, sparse });

let target: ConformanceTarget | undefined;
let apiInstance: ConformanceApi | undefined;

function api(): ConformanceApi {
  if (apiInstance === undefined) throw new Error('registry under test did not start');
  return apiInstance;
}

/**
 * Runs the sub-requests of one test like the suite's nested ChildRuns: every step runs, failures
 * are reported together at the end, and "unsupported" answers turn the test into a skip.
 */
class Steps {
  private readonly failures: string[] = [];
  private readonly unsupported: string[] = [];

  async run(label: string, fn: () => Promise<void>): Promise<'pass' | 'unsupported' | 'fail'> {
    try {
      await fn();
      return 'pass';
    } catch (error) {
      if (error instanceof Unsupported) {
        this.unsupported.push(`${label}: ${error.message}`);
        return 'unsupported';
      }
      const message = error instanceof Error ? error.message : String(error);
      this.failures.push(`${label}: ${message}`);
      return 'fail';
    }
  }

  finish(ctx: TestContext): void {
    if (this.failures.length > 0) {
      const more = this.unsupported.length > 0 ? `\n(unsupported: ${this.unsupported.join('; ')})` : '';
      throw new ConformanceError(`${this.failures.length} failed step(s):\n- ${this.failures.join('\n- ')}${more}`);
    }
    if (this.unsupported.length === 0) return;
    // wharf implements every optional API the suite probes: "unsupported" from wharf is a regression, not a skip.
    if (target?.kind === 'wharf') throw new ConformanceError(`unsupported: ${this.unsupported.join('; ')}`);
    ctx.skip(`unsupported: ${this.unsupported.join('; ')}`);
  }
}

/** The suite's skip, except against wharf, where every such path is expected to work. */
function skipOrFail(ctx: TestContext, why: string): void {
  if (target?.kind === 'wharf') throw new ConformanceError(why);
  ctx.skip(why);
}

/** `TestPushBlobAny`: post+put, post only, stream, chunked in turn; the first success wins. */
async function pushBlobAny(repoName: string, digest: string, body: Buffer): Promise<void> {
  const errors: string[] = [];
  const attempts: Array<[string, () => Promise<void>]> = [
    ['blob-post-put', () => api().blobPostPut(repoName, digest, body)],
    ['blob-post-only', () => api().blobPostOnly(repoName, digest, body)],
    ['blob-patch-stream', () => api().blobPatchStream(repoName, digest, body)],
    ['blob-patch-chunked', () => api().blobPatchChunked(repoName, digest, body)],
  ];
  for (const [name, attempt] of attempts) {
    try {
      await attempt();
      return;
    } catch (error) {
      errors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new ConformanceError(`no blob push API worked:\n  ${errors.join('\n  ')}`);
}

/** `TestDeleteBlob`: delete, then (atomic) an immediate HEAD must be 404. */
async function deleteBlob(steps: Steps, repoName: string, digest: string): Promise<void> {
  const deleted = await steps.run(`blob-delete ${repoName} ${digest}`, () => api().blobDelete(repoName, digest));
  if (deleted !== 'pass') return;
  await steps.run(`blob-delete atomic ${repoName} ${digest}`, async () => {
    expectStatus(await api().blobHead(repoName, digest), 404);
  });
}

async function headAndGetBlob(steps: Steps, repoName: string, digest: string, body: Buffer): Promise<void> {
  const known = knownBlob(digest, body);
  await steps.run(`blob-head ${digest}`, () => api().blobHeadExists(repoName, digest, known));
  await steps.run(`blob-get ${digest}`, () => api().blobGetExistsFull(repoName, digest, known));
}

describe('OCI Conformance Test (main suite port)', { timeout: TEST_TIMEOUT_MS }, () => {
  beforeAll(async () => {
    target = await startTarget({ sparseManifests: sparse });
    const client = new RegistryClient(target.url, { userAgent: 'Go-http-client/1.1', bodyErrors: 'record' });
    apiInstance = new ConformanceApi(client, { requireDigestHeader: devVersion, referrersEnabled: true });
    console.log(`[conformance main] target=${target.url} (${target.kind}) repo1=${repo} repo2=${repo2}`);
  }, TARGET_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await target?.close();
  }, TARGET_HOOK_TIMEOUT_MS);

  it('ping', async () => {
    // The suite only needs an HTTP answer to GET /v2/; any status passes.
    await api().ping();
  });

  describe('empty', () => {
    it('tag list', async () => {
      await api().tagList(repo);
    });

    it('referrers', async () => {
      await api().referrersList(repo, digestOf(random.text()));
    });
  });

  for (const algo of ['sha256', 'sha512'] as const) blobApiTests(algo);

  for (const { name, td } of dataSets) dataSetTests(name, td);

  describe('missing-manifest', () => {
    it('by-digest', async () => {
      const digest = digestOf(random.bytes(1024));
      expectStatus(await api().manifestGet(repo, digest), 404);
    });

    it('by-tag', async () => {
      const tag = `missing-${random.text().toLowerCase().slice(0, 20)}`;
      expectStatus(await api().manifestGet(repo, tag), 404);
    });
  });

  describe('invalid-digest-format', () => {
    const td = new TestData('Invalid Manifest Digest', random);
    const manifestDigest = td.genManifestFull({ layerCount: 1 });
    const body = (): Buffer => td.manifests.get(manifestDigest) ?? Buffer.alloc(0);

    it('push blobs', async (ctx) => {
      const steps = new Steps();
      for (const [digest, bytes] of td.blobs) await steps.run(`blob ${digest}`, () => pushBlobAny(repo, digest, bytes));
      steps.finish(ctx);
    });

    it('manifest-put', async () => {
      await api().manifestPut(repo, 'sha256:baddigeststring', manifestDigest, body(), { badDigest: true });
    });

    it('manifest-get', async () => {
      expectStatus(await api().manifestGet(repo, 'sha256:baddigeststring'), 404, 400);
    });

    it('delete', async (ctx) => {
      await deleteDataSet(ctx, td);
    });
  });
});

// -----------------------------------------------------------------------------------------------
// Blob push APIs (`TestBlobAPIs`)
// -----------------------------------------------------------------------------------------------

function blobApiTests(algo: DigestAlgorithm): void {
  describe(`${algo} blobs`, () => {
    const td = new TestData(`Blobs ${algo}`, random);
    const gen = (size: number): { digest: string; bytes: Buffer } => td.genBlob({ blobSize: size, algo });
    const named = new Map<string, { digest: string; bytes: Buffer }>();
    for (const name of [
      'post only',
      'post+put',
      'chunked single',
      'stream',
      'mount',
      'mount anonymous',
      'mount missing',
      'post cancel',
    ]) {
      named.set(name, gen(512));
    }
    const blob = (name: string): { digest: string; bytes: Buffer } => {
      const entry = named.get(name);
      if (entry === undefined) throw new Error(`no blob for ${name}`);
      return entry;
    };
    let minChunkSize = CHUNK_MIN;

    it('get-missing', async () => {
      expectStatus(await api().blobGet(repo, blob('post cancel').digest), 404);
    });

    /** Push with `push`; HEAD and GET only when it fully succeeded; then delete (and `after`). */
    const pushTest = (
      name: string,
      push: (steps: Steps, entry: { digest: string; bytes: Buffer }) => Promise<'pass' | 'unsupported' | 'fail'>,
      options: {
        entry?: () => { digest: string; bytes: Buffer };
        afterDelete?: (steps: Steps, digest: string) => Promise<void>;
      } = {},
    ): void => {
      it(name, async (ctx) => {
        const entry = options.entry?.() ?? blob(name);
        const steps = new Steps();
        const result = await push(steps, entry);
        if (result === 'pass' && name !== 'post cancel') await headAndGetBlob(steps, repo, entry.digest, entry.bytes);
        await deleteBlob(steps, repo, entry.digest);
        await options.afterDelete?.(steps, entry.digest);
        steps.finish(ctx);
      });
    };

    pushTest('post only', (steps, b) => steps.run('blob-post-only', () => api().blobPostOnly(repo, b.digest, b.bytes)));
    pushTest('post+put', (steps, b) => steps.run('blob-post-put', () => api().blobPostPut(repo, b.digest, b.bytes)));
    pushTest('chunked single', (steps, b) =>
      steps.run('blob-patch-chunked', () =>
        api().blobPatchChunked(repo, b.digest, b.bytes, {
          onMinHeader: (value) => {
            const parsed = Number.parseInt(value, 10);
            if (value !== '' && Number.isInteger(parsed) && parsed > minChunkSize) minChunkSize = parsed;
          },
        }),
      ),
    );
    pushTest('stream', (steps, b) =>
      steps.run('blob-patch-stream', () => api().blobPatchStream(repo, b.digest, b.bytes)),
    );
    pushTest(
      'mount',
      async (steps, b) => {
        await steps.run(`blob push to ${repo2}`, () => pushBlobAny(repo2, b.digest, b.bytes));
        return steps.run('blob-mount', () => api().blobMount(repo, repo2, b.digest, b.bytes));
      },
      {
        afterDelete: async (steps, digest) => {
          // The brief's per-repo atomicity check: deleting the blob from repo1 leaves repo2's copy.
          await steps.run(`blob still in ${repo2} after delete from ${repo}`, async () => {
            expectStatus(await api().blobHead(repo2, digest), 200);
          });
          await deleteBlob(steps, repo2, digest);
        },
      },
    );
    pushTest(
      'mount anonymous',
      async (steps, b) => {
        await steps.run(`blob push to ${repo2}`, () => pushBlobAny(repo2, b.digest, b.bytes));
        return steps.run('blob-mount-anonymous', () => api().blobMount(repo, '', b.digest, b.bytes));
      },
      { afterDelete: (steps, digest) => deleteBlob(steps, repo2, digest) },
    );
    pushTest('mount missing', (steps, b) =>
      steps.run('blob-mount', async () => {
        // mount from repo2 without pushing there first: anything but a 201 mount is right
        try {
          await api().blobMount(repo, repo2, b.digest, b.bytes);
        } catch (error) {
          if (error instanceof Unsupported) return;
          throw error;
        }
        throw new ConformanceError('blob mount of missing blob incorrectly succeeded (201)');
      }),
    );
    pushTest('post cancel', (steps) => steps.run('blob-post-cancel', () => api().blobPostCancel(repo)));

    const chunked = (name: string, flags: { putLastChunk?: boolean; outOfOrder?: boolean }): void => {
      let entry: { digest: string; bytes: Buffer } | undefined;
      pushTest(
        name,
        (steps, b) => steps.run('blob-patch-chunked', () => api().blobPatchChunked(repo, b.digest, b.bytes, flags)),
        {
          // a blob spanning three chunks, sized from the minimum seen in "chunked single"
          entry: () => (entry ??= gen(minChunkSize * 3 - 5)),
        },
      );
    };
    chunked('chunked multi', {});
    chunked('chunked multi and put chunk', { putLastChunk: true });
    chunked('chunked out-of-order', { outOfOrder: true });
    chunked('chunked out-of-order and put chunk', { putLastChunk: true, outOfOrder: true });

    describe('range requests', () => {
      const blobLen = 2048;
      let rangeBlob: { digest: string; bytes: Buffer } | undefined;
      let setup: Promise<string | undefined> | undefined;
      const pushed = (): Promise<string | undefined> =>
        (setup ??= (async () => {
          rangeBlob = gen(blobLen);
          try {
            await pushBlobAny(repo, rangeBlob.digest, rangeBlob.bytes);
            return undefined;
          } catch (error) {
            return error instanceof Error ? error.message : String(error);
          }
        })());

      const rangeTests: Array<{
        name: string;
        range: string;
        expect: ((res: RegistryResponse, body: Buffer) => void) | 416;
      }> = [
        { name: 'range 500-1499', range: 'bytes=500-1499', expect: partial(500, 1499) },
        { name: 'range 500-', range: 'bytes=500-', expect: partial(500, blobLen - 1) },
        { name: 'range -500', range: 'bytes=-500', expect: partial(blobLen - 500, blobLen - 1) },
        { name: 'range 2000-5000', range: 'bytes=2000-5000', expect: partial(2000, blobLen - 1) },
        { name: 'range 500-0', range: 'bytes=500-0', expect: 416 },
        { name: 'range 5000-10000', range: 'bytes=5000-10000', expect: 416 },
      ];

      function partial(first: number, last: number): (res: RegistryResponse, body: Buffer) => void {
        return (res, body) => {
          expectBody(res, body.subarray(first, last + 1));
          expectStatus(res, 206);
          expectHeader(res, 'Content-Length', String(last - first + 1));
          const contentRange = header(res, 'Content-Range');
          const accepted = [`bytes ${first}-${last}/${blobLen}`, `bytes ${first}-${last}/*`];
          if (!accepted.includes(contentRange)) {
            throw new ConformanceError(
              `${describeResponse(res)}: Content-Range expected ${accepted.map((a) => JSON.stringify(a)).join(' or ')}, received ${JSON.stringify(contentRange)}`,
            );
          }
        };
      }

      for (const test of rangeTests) {
        it(test.name, async (ctx) => {
          const setupError = await pushed();
          if (setupError !== undefined) skipOrFail(ctx, `setup push failed: ${setupError}`);
          const b = rangeBlob;
          if (b === undefined) throw new Error('range blob missing');
          const res = await api().blobGet(repo, b.digest, [['Range', test.range]]);
          if (res.status === 200) {
            // the suite's fallback branch matches a full 200 answer, then records it as a failure
            throw new ConformanceError(
              `${describeResponse(res)}: range request unsupported, full blob returned (Range: ${test.range})`,
            );
          }
          if (test.expect === 416) expectStatus(res, 416);
          else test.expect(res, b.bytes);
        });
      }

      it('blob-delete', async (ctx) => {
        const setupError = await pushed();
        if (setupError !== undefined) skipOrFail(ctx, `setup push failed: ${setupError}`);
        const steps = new Steps();
        await deleteBlob(steps, repo, rangeBlob?.digest ?? '');
        steps.finish(ctx);
      });
    });

    // well-known blob contents: the empty blob and the empty JSON object
    for (const [name, bytes] of [
      ['empty', Buffer.alloc(0)],
      ['emptyJSON', Buffer.from('{}')],
    ] as const) {
      it(name, async (ctx) => {
        const digest = digestOf(bytes, algo);
        const steps = new Steps();
        await steps.run('blob push', () => pushBlobAny(repo, digest, bytes));
        await headAndGetBlob(steps, repo, digest, bytes);
        await deleteBlob(steps, repo, digest);
        steps.finish(ctx);
      });
    }

    // every push API with a corrupted body must end in 400
    const corrupted = (): { digest: string; bytes: Buffer } => {
      const b = gen(minChunkSize * 3 - 5);
      return { digest: b.digest, bytes: Buffer.concat([b.bytes, Buffer.from('oh no')]) };
    };
    const badDigestTests: Array<[string, (b: { digest: string; bytes: Buffer }) => Promise<void>]> = [
      ['bad digest post only', (b) => api().blobPostOnly(repo, b.digest, b.bytes, { badDigest: true })],
      ['bad digest post+put', (b) => api().blobPostPut(repo, b.digest, b.bytes, { badDigest: true })],
      ['bad digest chunked', (b) => api().blobPatchChunked(repo, b.digest, b.bytes, { badDigest: true })],
      // as in run.go: the "and put chunk" variant passes the same options as "bad digest chunked"
      ['bad digest chunked and put chunk', (b) => api().blobPatchChunked(repo, b.digest, b.bytes, { badDigest: true })],
      ['bad digest stream', (b) => api().blobPatchStream(repo, b.digest, b.bytes, { badDigest: true })],
    ];
    for (const [name, push] of badDigestTests) {
      it(name, async (ctx) => {
        const steps = new Steps();
        await steps.run(name, () => push(corrupted()));
        steps.finish(ctx);
      });
    }
  });
}

// -----------------------------------------------------------------------------------------------
// Data sets (`TestPush`, `TestList`, `TestHead`, `TestPull`, `TestReferrers`, `TestDelete`)
// -----------------------------------------------------------------------------------------------

function dataSetTests(name: string, td: TestData): void {
  describe(name, () => {
    it('push', async (ctx) => {
      const steps = new Steps();
      for (const [digest, bytes] of td.blobs) await steps.run(`blob ${digest}`, () => pushBlobAny(repo, digest, bytes));
      for (const digest of td.manOrder) {
        await steps.run(`manifest-by-digest ${digest}`, () => pushManifestDigest(td, digest));
      }
      for (const [tag, digest] of td.tags) {
        if (td.tagPushed.has(tag)) continue; // already pushed as a tag parameter
        await steps.run(`manifest-by-tag ${tag}`, async () => {
          await api().manifestPut(repo, tag, digest, manifestBody(td, digest));
          td.tagPushed.add(tag);
        });
      }
      steps.finish(ctx);
    });

    it('tag-list', async () => {
      const tags = await api().tagList(repo);
      const errors: string[] = [];
      for (const tag of td.tags.keys()) {
        if (!tags.includes(tag)) errors.push(`missing tag ${JSON.stringify(tag)} from listing ${JSON.stringify(tags)}`);
      }
      if (tags.length >= 2) {
        const sorted = [...tags].sort(byteOrder);
        const end = Math.trunc(sorted.length / 2);
        const last = sorted[end - 1] ?? '';
        const partialList = await api().tagList(repo, last);
        for (const tag of sorted.slice(0, end)) {
          if (partialList.includes(tag))
            errors.push(`tag ${JSON.stringify(tag)} returned when last set to ${JSON.stringify(last)}`);
        }
        for (const tag of sorted.slice(end)) {
          if (!partialList.includes(tag))
            errors.push(`tag ${JSON.stringify(tag)} missing when last set to ${JSON.stringify(last)}`);
        }
      }
      if (errors.length > 0) throw new ConformanceError(`GET /v2/${repo}/tags/list:\n- ${errors.join('\n- ')}`);
    });

    it('head', async (ctx) => {
      const steps = new Steps();
      for (const [tag, digest] of td.tags) {
        if (td.skipPull.has(digest)) continue;
        await steps.run(`manifest-head-by-tag ${tag}`, () =>
          api().manifestHeadExists(repo, tag, digest, td.manifests.get(digest)),
        );
      }
      for (const digest of td.manOrder) {
        if (td.skipPull.has(digest)) continue;
        await steps.run(`manifest-head-by-digest ${digest}`, () =>
          api().manifestHeadExists(repo, digest, digest, td.manifests.get(digest)),
        );
      }
      for (const [digest, bytes] of td.blobs) {
        await steps.run(`blob-head ${digest}`, () => api().blobHeadExists(repo, digest, knownBlob(digest, bytes)));
      }
      steps.finish(ctx);
    });

    it('pull', async (ctx) => {
      const steps = new Steps();
      for (const [tag, digest] of td.tags) {
        if (td.skipPull.has(digest)) continue;
        await steps.run(`manifest-by-tag ${tag}`, () =>
          api().manifestGetExists(repo, tag, digest, td.manifests.get(digest)),
        );
      }
      for (const digest of td.manOrder) {
        if (td.skipPull.has(digest)) continue;
        await steps.run(`manifest-by-digest ${digest}`, () =>
          api().manifestGetExists(repo, digest, digest, td.manifests.get(digest)),
        );
      }
      for (const [digest, bytes] of td.blobs) {
        await steps.run(`blob-get ${digest}`, () => api().blobGetExistsFull(repo, digest, knownBlob(digest, bytes)));
      }
      steps.finish(ctx);
    });

    if (td.referrers.size > 0) {
      it('referrers', async (ctx) => {
        const steps = new Steps();
        for (const [subject, goals] of td.referrers) {
          await steps.run(`referrers ${subject}`, async () => {
            const list = await api().referrersList(repo, subject);
            const missing = goals.filter((goal) => !list.manifests.some((entry) => matchesGoal(entry, goal)));
            if (missing.length > 0) throw new ConformanceError(missingMessage(subject, missing, list.manifests));
          });
          for (const artifactType of new Set(goals.map((goal) => goal.artifactType ?? ''))) {
            await steps.run(`referrers ${subject} artifactType=${artifactType}`, async () => {
              const list = await api().referrersList(repo, subject, artifactType);
              const applied = list.filtersApplied.split(',').some((filter) => filter.trim() === 'artifactType');
              const missing = goals.filter(
                (goal) =>
                  (!applied || (goal.artifactType ?? '') === artifactType) &&
                  !list.manifests.some((entry) => matchesGoal(entry, goal)),
              );
              if (missing.length > 0) throw new ConformanceError(missingMessage(subject, missing, list.manifests));
              if (applied) {
                const others = list.manifests.filter(
                  (entry) => (typeof entry.artifactType === 'string' ? entry.artifactType : '') !== artifactType,
                );
                if (others.length > 0) {
                  throw new ConformanceError(
                    `referrers filter for artifactType ${artifactType} included ${JSON.stringify(others)}`,
                  );
                }
              } else {
                throw new Unsupported(
                  `GET /v2/${repo}/referrers/${subject}?artifactType=…: registry does not set OCI-Filters-Applied: artifactType`,
                );
              }
            });
          }
        }
        steps.finish(ctx);
      });
    }

    it('delete', async (ctx) => {
      await deleteDataSet(ctx, td);
    });
  });
}

/** `TestPushManifestDigest`: PUT by digest (with `?tag=` for tag-param sets), OCI-Tag check. */
async function pushManifestDigest(td: TestData, digest: string): Promise<void> {
  const tags = td.tagParam.has(digest) ? [...td.tags].filter(([, d]) => d === digest).map(([tag]) => tag) : [];
  const res = await api().manifestPut(repo, digest, digest, manifestBody(td, digest), {
    badDigest: td.expectBadDigest.has(digest),
    tags,
  });
  if (tags.length === 0) return;
  const returned = ociTags(res);
  const missing: string[] = [];
  for (const tag of tags) {
    if (returned.includes(tag)) td.tagPushed.add(tag);
    else missing.push(tag);
  }
  if (missing.length > 0) {
    throw new Unsupported(
      `${describeResponse(res)}: OCI-Tag header missing ${missing.join(', ')} (received ${JSON.stringify(returned)})`,
    );
  }
}

/** `TestDelete`: pushed tags, then manifests in reverse push order, then blobs; each checked atomic. */
async function deleteDataSet(ctx: TestContext, td: TestData): Promise<void> {
  const steps = new Steps();
  for (const [tag] of td.tags) {
    if (!td.tagPushed.has(tag)) continue;
    const deleted = await steps.run(`tag-delete ${tag}`, () => api().manifestDelete(repo, tag));
    if (deleted === 'pass') {
      await steps.run(`tag-delete atomic ${tag}`, async () => expectStatus(await api().manifestHead(repo, tag), 404));
    }
  }
  for (const digest of [...td.manOrder].reverse()) {
    const deleted = await steps.run(`manifest-delete ${digest}`, () => api().manifestDelete(repo, digest));
    if (deleted === 'pass') {
      await steps.run(`manifest-delete atomic ${digest}`, async () =>
        expectStatus(await api().manifestHead(repo, digest), 404),
      );
    }
  }
  for (const digest of td.blobs.keys()) await deleteBlob(steps, repo, digest);
  steps.finish(ctx);
}

function manifestBody(td: TestData, digest: string): Buffer {
  const body = td.manifests.get(digest);
  if (body === undefined) throw new Error(`no manifest ${digest}`);
  return body;
}

/** The suite's match: digest, mediaType, size, artifactType, and every goal annotation. */
function matchesGoal(entry: ReferrerEntry, goal: Descriptor): boolean {
  const annotations =
    typeof entry.annotations === 'object' && entry.annotations !== null
      ? (entry.annotations as Record<string, unknown>)
      : {};
  const artifactType = typeof entry.artifactType === 'string' ? entry.artifactType : '';
  return (
    entry.digest === goal.digest &&
    entry.mediaType === goal.mediaType &&
    entry.size === goal.size &&
    artifactType === (goal.artifactType ?? '') &&
    Object.entries(goal.annotations ?? {}).every(([key, value]) => annotations[key] === value)
  );
}

function missingMessage(subject: string, missing: Descriptor[], received: ReferrerEntry[]): string {
  const show = (d: Descriptor): string =>
    JSON.stringify({
      digest: d.digest,
      mediaType: d.mediaType,
      size: d.size,
      artifactType: d.artifactType,
      annotations: d.annotations,
    });
  return `GET /v2/${repo}/referrers/${subject}: entries missing from referrers list: ${missing.map(show).join(', ')}; received ${JSON.stringify(received)}`;
}

/** Go's `slices.Sort` on strings: byte order. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function envOr(name: string, fallback: string): string {
  const value = process.env[name];
  return value !== undefined && value !== '' ? value : fallback;
}
