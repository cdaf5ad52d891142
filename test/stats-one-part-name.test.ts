/**
 * `wharf stats` groups repositories by upstream from the first component of their name. A one-part
 * (local) name has no such component: one that is an upstream's host component plus one character
 * (`registry.example.tests` beside the upstream `registry.example.test`) is still local, never counted under
 * that upstream (the first `/` searched for and not found must not cut the name's last character).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
// Never dialled: nothing here is pulled through the mirror.
const upstreamUrl = 'http://127.0.0.1:9';

let wharf: WharfHandle | undefined;
let dataDir: string;
let pushed: TestImage;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-stats-one-part-'));
  pushed = await makeImage({ seed: testSeed('stats one-part name'), layers: 1, layerSize: 500 });
  wharf = await startWharf({ dataDir, upstreams: [{ host: registryHost, url: upstreamUrl }] });
  await pushTestImage(wharf.url, `${registryHost}s`, 'v1', pushed);
  await wharf.close();
  wharf = undefined;
}, 60_000);

afterAll(async () => {
  await wharf?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 30_000);

it('stats --json counts a one-part local name as local, not under the upstream it extends', async () => {
  const out = await runWharf(['stats', '--json', '--data', dataDir], {
    env: { WHARF_UPSTREAMS: `${registryHost}=${upstreamUrl}` },
  });
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  const report = JSON.parse(out.stdout) as {
    upstreams: { upstream: string; repositories: number }[];
    repositories: { name: string; upstream?: string }[];
  };
  expect(report.upstreams.map((u) => [u.upstream, u.repositories])).toEqual([['local', 1]]);
  expect(report.repositories).toHaveLength(1);
  expect(report.repositories[0]?.name).toBe(`${registryHost}s`);
  expect(report.repositories[0]?.upstream).toBeUndefined();
}, 60_000);
