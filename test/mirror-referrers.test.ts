/**
 * Decision 0014: `GET /v2/<mirrored>/referrers/<digest>` lists what the upstream lists, before any
 * signature was pulled through the mirror (it used to be empty until then, so cosign/notation and
 * `wharf copy --referrers` from a mirror found nothing). Against CNCF distribution, which has no
 * referrers API (the fallback tag `sha256-<hex>` is read), and against a wharf central (its API).
 * The listing is shared and cached (a repeat within the TTL asks nothing upstream), filtered by
 * artifactType, merged with what the mirror holds, served from the last answer when the upstream is
 * gone (stale-if-error), and not at all offline; `wharf copy --referrers` from the mirror carries the signature. A private upstream's referrers stay private (0003):
 * a client that may not read the name gets 403, and the upstream is not even asked.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { makeSignature, pushSignature, signatureArtifactType } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeout = 120_000;
const mirrored = 'registry.example.test';

let image: TestImage;
let signature: TestImage;

interface ReferrersIndex {
  manifests: { digest: string; artifactType?: string }[];
}

async function referrers(mirror: WharfHandle, name: string, query = ''): Promise<string[]> {
  const response = await fetch(`${mirror.url}/v2/${name}/referrers/${image.root.digest}${query}`, {
    signal: AbortSignal.timeout(30_000),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as ReferrersIndex).manifests.map((m) => m.digest);
}

beforeAll(async () => {
  image = await makeImage({ seed: testSeed('mirror referrers'), layers: 1 });
  signature = makeSignature(image.root, 'signed upstream');
});

describe('referrers of mirrored content, from a CNCF distribution upstream (fallback tag)', () => {
  let source: DistributionHandle;
  let mirror: WharfHandle;

  beforeAll(async () => {
    source = await startDistribution();
    await pushTestImage(source.url, 'team/app', 'v1', image);
    await pushSignature(source.url, 'team/app', image.root, signature, { tagSchema: true });
    mirror = await startWharf({ upstreams: [{ host: mirrored, url: source.url, tagTtlMs: 60_000 }] });
  }, timeout);

  afterAll(async () => {
    await Promise.allSettled([mirror?.close(), source?.close()]);
  });

  it(
    'lists the signature before it was pulled, once upstream per TTL, filtered, then stale when the upstream is gone',
    async () => {
      const name = `${mirrored}/team/app`;
      const fallback = `/v2/team/app/manifests/${image.root.digest.replace(':', '-')}`;
      expect(await referrers(mirror, name)).toEqual([signature.root.digest]);
      // A second listing within the TTL is the cached one.
      expect(await referrers(mirror, name)).toEqual([signature.root.digest]);
      expect(countRequests(await source.settledLogs(), 'GET', fallback)).toBe(1);

      expect(await referrers(mirror, name, `?artifactType=${encodeURIComponent(signatureArtifactType)}`)).toEqual([
        signature.root.digest,
      ]);
      expect(await referrers(mirror, name, '?artifactType=application%2Fvnd.example.other')).toEqual([]);

      // The client then pulls the signature by digest through the mirror: verified, kept, listed once.
      const pulled = await fetch(`${mirror.url}/v2/${name}/manifests/${signature.root.digest}`, {
        headers: { Accept: signature.root.mediaType },
        signal: AbortSignal.timeout(30_000),
      });
      expect(pulled.status).toBe(200);
      expect(sha256Digest(Buffer.from(await pulled.arrayBuffer()))).toBe(signature.root.digest);
      expect(await referrers(mirror, name)).toEqual([signature.root.digest]);
    },
    timeout,
  );

  // Round 13a of the planted bugs: a referrers listing that dropped the request's ?ns= (containerd's
  // way to name the upstream) read the local repository of that path, an empty index, and no test saw it.
  it(
    'lists the signature when the upstream is named by ?ns= rather than in the path',
    async () => {
      expect(await referrers(mirror, 'team/app', `?ns=${mirrored}`)).toEqual([signature.root.digest]);
    },
    timeout,
  );

  it(
    'lets `wharf copy --referrers` from the mirror carry the signature',
    async () => {
      const work = await mkdtemp(join(tmpdir(), 'wharf-mirror-referrers-'));
      // A fresh mirror: nothing pulled through it yet, so the signature can only come from the upstream's listing.
      const cold = await startWharf({ upstreams: [{ host: mirrored, url: source.url }] });
      try {
        const layout = join(work, 'copied');
        const copied = await runWharf(
          ['copy', '-q', '--referrers', `${cold.host}/${mirrored}/team/app:v1`, `oci:${layout}`],
          { timeoutMs: 60_000 },
        );
        expect(copied.code, copied.stderr).toBe(0);
        const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ReferrersIndex;
        expect(index.manifests.map((m) => m.digest)).toEqual([image.root.digest, signature.root.digest]);
      } finally {
        await cold.close();
        await rm(work, { recursive: true, force: true });
      }
    },
    timeout,
  );
});

describe('referrers of mirrored content, from a wharf central (referrers API)', () => {
  let central: WharfHandle;
  let mirror: WharfHandle;
  let offline: WharfHandle;

  beforeAll(async () => {
    central = await startWharf();
    await pushTestImage(central.url, 'team/app', 'v1', image);
    await pushSignature(central.url, 'team/app', image.root, signature, { tagSchema: false });
    // A TTL of 0: every listing asks again, so the stale answer below is the upstream being gone.
    mirror = await startWharf({ upstreams: [{ host: mirrored, url: central.url, tagTtlMs: 0 }] });
  }, timeout);

  afterAll(async () => {
    await Promise.allSettled([mirror?.close(), central?.close(), offline?.close()]);
  });

  it(
    "lists the central's referrers, serves the last listing when the central is gone, and nothing offline",
    async () => {
      const name = `${mirrored}/team/app`;
      expect(await referrers(mirror, name)).toEqual([signature.root.digest]);

      await central.close();
      // stale-if-error: the last listing the upstream gave.
      expect(await referrers(mirror, name)).toEqual([signature.root.digest]);

      // Offline, only what the mirror holds (nothing was pulled): an empty index, no dial-out.
      offline = await startWharf({ offline: true, upstreams: [{ host: mirrored, url: central.url }] });
      expect(await referrers(offline, name)).toEqual([]);
    },
    timeout,
  );
});

describe('referrers of a private upstream', () => {
  let source: DistributionHandle;
  let mirror: WharfHandle;
  const login = { user: 'mirror', password: 'mirror-pw' };

  beforeAll(async () => {
    source = await startDistribution({ htpasswd: login });
    const headers = { Authorization: `Basic ${Buffer.from(`${login.user}:${login.password}`).toString('base64')}` };
    await pushTestImage(source.url, 'team/secret', 'v1', image, headers);
    await pushSignature(source.url, 'team/secret', image.root, signature, { tagSchema: true, headers });
    // Credentials make the upstream private; without users its names are served to nobody.
    mirror = await startWharf({
      upstreams: [{ host: mirrored, url: source.url, username: login.user, password: login.password }],
    });
  }, timeout);

  afterAll(async () => {
    await Promise.allSettled([mirror?.close(), source?.close()]);
  });

  it(
    'are refused like every other read of the name, without asking the upstream',
    async () => {
      const response = await fetch(`${mirror.url}/v2/${mirrored}/team/secret/referrers/${image.root.digest}`, {
        signal: AbortSignal.timeout(30_000),
      });
      expect(response.status).toBe(403);
      expect(((await response.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
      const fallback = `/v2/team/secret/manifests/${image.root.digest.replace(':', '-')}`;
      expect(countRequests(await source.settledLogs(), 'GET', fallback)).toBe(0);
    },
    timeout,
  );
});
