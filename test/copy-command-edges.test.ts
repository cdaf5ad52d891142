/**
 * `wharf copy` (src/cli/client/copy-command.ts, copy-archive.ts, platforms.ts) run in process against
 * wharf on loopback (round 9b of planted bugs), on the inputs its other tests never gave it: a target
 * already up to date asked for with --referrers (a signature added since must still go), a target
 * named by digest, a `--platform` without the variant the index lists, an `oci:<dir>:<ref>` source
 * whose layout holds other images too, and a copy to an archive that fails (no `.part` left).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCopy, type CopyFlags } from '../src/cli/client/copy-command.js';
import { makeImage, testSeed, type PlatformImage, type TestImage } from './support/make-image.js';
import { makeSignature, pushSignature } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { sendBytes, sendError, sendJson, startScriptedRegistry } from './support/scripted-registry.js';
import { withDeadline } from './support/run.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const deadlineMs = 60_000;
let work: string;
let wharf: WharfHandle;
let plain: TestImage;
let other: TestImage;
let multi: TestImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-copy-edges-'));
  wharf = await startWharf();
  plain = await makeImage({ seed: testSeed('copy edges plain'), layers: 1, layerSize: 1024 });
  other = await makeImage({ seed: testSeed('copy edges other'), layers: 1, layerSize: 1536 });
  multi = await makeImage({
    seed: testSeed('copy edges multi'),
    layers: 1,
    layerSize: 512,
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
  });
  await pushTestImage(wharf.url, 'src/plain', 'v1', plain);
  await pushTestImage(wharf.url, 'src/plain', 'v2', other);
  await pushTestImage(wharf.url, 'src/multi', 'v1', multi);
}, deadlineMs);

afterAll(async () => {
  await wharf?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

function copy(source: string, destination: string, flags: Partial<CopyFlags> = {}): Promise<void> {
  const env = { DOCKER_CONFIG: join(work, 'no-docker-config'), WHARF_LOG_LEVEL: 'silent' };
  return withDeadline(
    runCopy(source, destination, { quiet: true, plainHttp: true, ...flags }, env),
    deadlineMs,
    `wharf copy ${source} ${destination}`,
  );
}

async function digestAt(repo: string, reference: string, accept: string): Promise<string | undefined> {
  const response = await fetch(`${wharf.url}/v2/${repo}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { Accept: accept },
  });
  return response.status === 200 ? (response.headers.get('docker-content-digest') ?? undefined) : undefined;
}

async function referrersOf(repo: string, digest: string): Promise<string[]> {
  const response = await fetch(`${wharf.url}/v2/${repo}/referrers/${digest}`);
  const body = (await response.json()) as { manifests: { digest: string }[] };
  return body.manifests.map((m) => m.digest);
}

describe('wharf copy --referrers to a target already up to date', () => {
  it('still carries a signature added at the source since the last copy', async () => {
    await pushTestImage(wharf.url, 'src/signed', 'v1', plain);
    await copy(`${wharf.host}/src/signed:v1`, `${wharf.host}/dst/signed:v1`, { referrers: true });
    expect(await referrersOf('dst/signed', plain.root.digest)).toEqual([]);
    // Signed after the first copy: the target's tag is already at the source's digest.
    const signature = makeSignature(plain.root, 'signed later');
    await pushSignature(wharf.url, 'src/signed', plain.root, signature, { tagSchema: false });
    await copy(`${wharf.host}/src/signed:v1`, `${wharf.host}/dst/signed:v1`, { referrers: true });
    expect(await referrersOf('dst/signed', plain.root.digest)).toEqual([signature.root.digest]);
  });
});

// Found by this round: the copy moved the target's tag named like the source's (`v1`) before it
// compared the digests, and named by the right digest it still put the image under that tag.
describe('wharf copy to a target named by digest', () => {
  it('refuses a digest the source is not at (DIGEST_INVALID), before anything moves', async () => {
    await expect(
      copy(`${wharf.host}/src/plain:v1`, `${wharf.host}/dst/bydigest@${other.root.digest}`),
    ).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
    // Refused before anything moved: no tag (the source's `v1`) and no manifest at the target.
    expect(await digestAt('dst/bydigest', 'v1', plain.root.mediaType)).toBeUndefined();
    expect(await digestAt('dst/bydigest', plain.root.digest, plain.root.mediaType)).toBeUndefined();
  });

  it('copies the image the digest names, under that digest and no tag', async () => {
    await copy(`${wharf.host}/src/plain:v1`, `${wharf.host}/dst/bydigest@${plain.root.digest}`);
    expect(await digestAt('dst/bydigest', plain.root.digest, plain.root.mediaType)).toBe(plain.root.digest);
    expect(await digestAt('dst/bydigest', 'v1', plain.root.mediaType)).toBeUndefined();
  });

  it('refuses the copy when the source tag moved off that digest between its HEAD and the copy', async () => {
    // A source whose v1 answers a HEAD with plain's digest and a GET with other's manifest (a push in between).
    const source = await startScriptedRegistry((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/v2/' || path === '/v2') return sendJson(res, 200, {});
      if (path === '/v2/src/moving/manifests/v1' && req.method === 'HEAD') {
        return sendBytes(res, plain.root.bytes, {
          'Content-Type': plain.root.mediaType,
          'Docker-Content-Digest': plain.root.digest,
        });
      }
      if (path === '/v2/src/moving/manifests/v1' || path === `/v2/src/moving/manifests/${other.root.digest}`) {
        return sendBytes(res, other.root.bytes, {
          'Content-Type': other.root.mediaType,
          'Docker-Content-Digest': other.root.digest,
        });
      }
      const bytes = other.blobs.get(path.replace('/v2/src/moving/blobs/', ''));
      if (path.startsWith('/v2/src/moving/blobs/') && bytes !== undefined) {
        return sendBytes(res, bytes, { 'Content-Type': 'application/octet-stream' });
      }
      return sendError(res, 404, 'MANIFEST_UNKNOWN');
    });
    try {
      await expect(
        copy(`${source.host}/src/moving:v1`, `${wharf.host}/dst/moved@${plain.root.digest}`),
      ).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      expect(await digestAt('dst/moved', 'v1', other.root.mediaType)).toBeUndefined();
    } finally {
      await source.close();
    }
  });
});

describe('wharf copy --platform', () => {
  it('takes os/arch without a variant as any variant of it (linux/arm64 is the arm64/v8 image)', async () => {
    const arm64 = multi.images[1] as PlatformImage;
    await copy(`${wharf.host}/src/multi:v1`, `${wharf.host}/dst/arm:v1`, { platform: 'linux/arm64' });
    expect(await digestAt('dst/arm', 'v1', arm64.manifest.mediaType)).toBe(arm64.manifest.digest);
  });

  it('takes --platform given twice on the command line as both (the index kept), not the last alone', async () => {
    const [amd64, arm64] = multi.images as [PlatformImage, PlatformImage];
    const args = ['copy', '--plain-http', '--quiet', '--platform', 'linux/amd64', '--platform', 'linux/arm64'];
    const result = await runWharf([...args, `${wharf.host}/src/multi:v1`, `${wharf.host}/dst/both:v1`], {
      env: { DOCKER_CONFIG: join(work, 'no-docker-config'), WHARF_LOG_LEVEL: 'silent' },
      timeoutMs: deadlineMs,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await digestAt('dst/both', 'v1', multi.root.mediaType)).toBe(multi.root.digest);
    for (const image of [amd64, arm64]) {
      expect(await digestAt('dst/both', image.manifest.digest, image.manifest.mediaType)).toBe(image.manifest.digest);
    }
  });
});

describe('wharf copy oci:<dir>:<ref> to a registry', () => {
  it('copies the image that ref names and none of the others the layout holds', async () => {
    const dir = join(work, 'layout-two');
    await copy(`${wharf.host}/src/plain:v1`, `oci:${dir}:first`);
    await copy(`${wharf.host}/src/plain:v2`, `oci:${dir}:second`);
    await copy(`oci:${dir}:second`, `${wharf.host}/dst/picked:latest`);
    expect(await digestAt('dst/picked', 'latest', other.root.mediaType)).toBe(other.root.digest);
    expect(await digestAt('dst/picked', plain.root.digest, plain.root.mediaType)).toBeUndefined();
    expect(await digestAt('dst/picked', 'first', plain.root.mediaType)).toBeUndefined();
  });
});

describe('wharf copy to an archive that fails', () => {
  it('leaves no .part file behind', async () => {
    const dir = await mkdtemp(join(work, 'failed-'));
    await expect(copy(`${wharf.host}/src/plain:absent`, `oci-archive:${join(dir, 'app.tar')}`)).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
    expect(await readdir(dir)).toEqual([]);
  });
});
