/**
 * SIGHUP re-reads the upstreams' credentials (issue 9, "the first hour": reload what can be
 * reloaded, never kill the process). A password rotated at a private upstream is taken without a
 * restart; a config that no longer loads is logged and changes nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call } from './support/http.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { withDeadline } from './support/run.js';
import { spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';

const host = 'private.example.test';
const basic = (user: string, password: string): Record<string, string> => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

let dir: string;
let upstream: DistributionHandle;
let image: TestImage;
let wharf: SpawnedWharf | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-credential-reload-'));
  upstream = await startDistribution({ htpasswd: { user: 'ci', password: 'rotated' } });
  image = await makeImage({ seed: testSeed('credential reload'), layers: 1 });
  await pushTestImage(upstream.url, 'team/app', 'v1', image, basic('ci', 'rotated'));
}, 60_000);

afterAll(async () => {
  await wharf?.kill();
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

function configWith(password: string): string {
  // public: true so that anonymous clients of this test may read it (a private upstream needs users).
  return ['upstreams:', `  ${host}:`, `    url: ${upstream.url}`, '    username: ci', `    password: ${password}`]
    .concat(['    public: true', ''])
    .join('\n');
}

async function manifestStatus(url: string): Promise<number> {
  const response = await call(url, `/v2/${host}/team/app/manifests/v1`, {
    headers: { Accept: image.root.mediaType },
  });
  await response.arrayBuffer();
  return response.status;
}

describe('SIGHUP', () => {
  it('takes a rotated upstream password without a restart, and keeps it when the config breaks', async () => {
    const config = join(dir, 'wharf.yaml');
    await writeFile(config, configWith('old-password'));
    wharf = await spawnWharf(['--config', config, '--data', join(dir, 'data')]);
    const refused = await manifestStatus(wharf.url);
    expect(refused).not.toBe(200);

    await writeFile(config, configWith('rotated'));
    wharf.child.kill('SIGHUP');
    const running = wharf;
    await withDeadline(
      (async () => {
        while ((await manifestStatus(running.url)) !== 200) await new Promise((r) => setTimeout(r, 100));
      })(),
      20_000,
      'a pull with the reloaded password',
    );

    await writeFile(config, 'upstreams: [not, a, map\n');
    wharf.child.kill('SIGHUP');
    await withDeadline(
      (async () => {
        while (!running.output().includes('config not reloaded')) await new Promise((r) => setTimeout(r, 100));
      })(),
      20_000,
      'the refused reload being logged',
    );
    expect(wharf.child.exitCode).toBeNull();
    expect(wharf.child.signalCode).toBeNull();
    // The blob was never fetched: it is pulled now with the credentials still in use.
    const layer = image.images[0]?.layers[0];
    if (layer === undefined) throw new Error('no layer');
    const blob = await call(wharf.url, `/v2/${host}/team/app/blobs/${layer.digest}`);
    expect(blob.status).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).byteLength).toBe(layer.size);
  }, 90_000);
});
