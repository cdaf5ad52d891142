/**
 * The auth matrix with real clients (issue 8, "Tests and proof"): docker (`login`, `push`,
 * `pull`, `logout` against a private dockerd), skopeo (`--creds`, `--src-creds`, `--dest-creds`),
 * podman (`login` into a temp auth file) and containerd (`ctr --user`, and Basic in hosts.toml
 * headers) against one wharf with users and rules:
 *
 * - alice may pull and push under team/**; reader may pull everything; root is admin;
 * - anonymous clients may pull public names only (local ones and the public upstream's);
 * - `private.example.test` is a CNCF distribution behind htpasswd, wharf holds its credentials:
 *   its images are served only to signed-in clients with pull (issue 8 finding 3).
 *
 * Last, a token that expires between two requests of one pull is renewed by each client (the
 * only slow test here: a token lives at least 60 s for these clients).
 *
 * No client reads credentials from the machine: every credential store (docker's config dir,
 * containers' auth file, DOCKER_CONFIG) points into this file's temp dir.
 */
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthSettings } from '../src/cli/auth-config.js';
import { startContainerd, writeHostsToml, type ContainerdHandle } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { startDockerd, type DockerdHandle } from './support/dockerd.js';
import { call } from './support/http.js';
import { makeImage, tarOf, testSeed, writeOciLayout, type TestImage } from './support/make-image.js';
import { podman, podmanImageInspect, writePodmanConfig } from './support/podman.js';
import { startHoldingProxy } from './support/holding-proxy.js';
import { pushTestImage } from './support/push-image.js';
import { run, RunError, type RunResult } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const privateHost = 'private.example.test';
const publicHost = 'public.example.test';
const passwords = { alice: 'alice-pw', reader: 'reader-pw', root: 'root-pw' } as const;
type User = keyof typeof passwords;
const clientTimeoutMs = 120_000;
const testTimeoutMs = 240_000;

function creds(user: User): string {
  return `${user}:${passwords[user]}`;
}

function basicHeader(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

function authSettings(tokenTtlMs: number): AuthSettings {
  return {
    users: new Map(Object.entries(passwords).map(([user, password]) => [user, bcrypt.hashSync(password, 4)])),
    access: [
      { repositories: ['**'], users: ['root'], allow: ['admin'] },
      { repositories: ['team/**'], users: ['alice'], allow: ['pull', 'push'] },
      { repositories: ['**'], users: ['reader'], allow: ['pull'] },
      // Never counts on the private upstream's names (access-policy): those need a signed-in user.
      { repositories: ['**'], users: ['anonymous'], allow: ['pull'] },
    ],
    tokenTtlMs,
    realm: undefined,
  };
}

/** Resolves to the RunError of a command that must fail; a success fails the test. */
async function failureOf(command: Promise<RunResult>, what: string): Promise<RunError> {
  const outcome = await command.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (outcome instanceof RunError) return outcome;
  if (outcome === undefined) throw new Error(`${what}: expected the client to fail, it succeeded`);
  throw outcome instanceof Error ? outcome : new Error(`${what}: ${JSON.stringify(outcome)}`);
}

let dir: string;
let privateUpstream: DistributionHandle;
let publicUpstream: DistributionHandle;
let wharf: WharfHandle;
let secret: TestImage;
let open: TestImage;
let pushed: TestImage;
/** Environment that keeps skopeo and podman away from any credentials on the machine. */
let isolatedCredentials: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-auth-clients-'));
  privateUpstream = await startDistribution({ htpasswd: { user: 'user', password: 'pass' } });
  publicUpstream = await startDistribution();
  const seed = testSeed('auth clients');
  [secret, open, pushed] = await Promise.all([
    makeImage({ seed: `${seed}-secret`, layers: 2 }),
    makeImage({ seed: `${seed}-open`, layers: 1 }),
    makeImage({ seed: `${seed}-pushed`, layers: 2 }),
  ]);
  await pushTestImage(privateUpstream.url, 'team/secret', 'v1', secret, basicHeader('user', 'pass'));
  await pushTestImage(publicUpstream.url, 'team/open', 'v1', open);
  await writeOciLayout(pushed, join(dir, 'layout'), 'v1');
  await mkdir(join(dir, 'docker-config'));
  isolatedCredentials = {
    DOCKER_CONFIG: join(dir, 'docker-config'),
    REGISTRY_AUTH_FILE: join(dir, 'no-auth.json'),
  };
  wharf = await startWharf({
    upstreams: [
      { host: privateHost, url: privateUpstream.url, username: 'user', password: 'pass' },
      { host: publicHost, url: publicUpstream.url },
    ],
    auth: authSettings(60_000),
  });
}, 120_000);

afterAll(async () => {
  await wharf?.close();
  await privateUpstream?.close();
  await publicUpstream?.close();
  await rm(dir, { recursive: true, force: true });
});

const secretName = (): string => `${wharf.host}/${privateHost}/team/secret:v1`;
const secretImage = (): TestImage['images'][number] => {
  const first = secret.images[0];
  if (first === undefined) throw new Error('test image has no platform image');
  return first;
};

describe.sequential('docker', () => {
  let docker: DockerdHandle;

  beforeAll(async () => {
    docker = await startDockerd({ insecureRegistries: [wharf.host] });
  }, 120_000);
  afterAll(async () => docker?.close());

  const login = (user: User, password: string = passwords[user]): Promise<RunResult> =>
    docker.docker(['login', '--username', user, '--password-stdin', wharf.host], { input: password });

  it(
    'docker login: a wrong password fails, the right one succeeds',
    async () => {
      const wrong = await failureOf(login('alice', 'not-the-password'), 'docker login with a wrong password');
      expect(wrong.stderr).toContain('unauthorized: wrong user name or password');
      const right = await login('alice');
      expect(right.stdout).toContain('Login Succeeded');
    },
    testTimeoutMs,
  );

  it(
    'alice pushes to team/app; reader may not push there',
    async () => {
      const ref = `${wharf.host}/team/app:v1`;
      const rootfs = await tarOf([{ name: 'wharf-test/app.txt', data: Buffer.from(`app ${dir}\n`) }]);
      await docker.docker(['import', '-', ref], { input: rootfs });
      await login('alice');
      await docker.docker(['push', ref]);
      const manifest = await call(wharf.url, '/v2/team/app/manifests/v1', {
        headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      expect(manifest.status).toBe(200);

      await login('reader');
      const v2 = `${wharf.host}/team/app:v2`;
      await docker.docker(['tag', ref, v2]);
      const refused = await failureOf(docker.docker(['push', v2]), 'docker push as reader');
      expect(refused.stderr).toContain('denied: requested access to the resource is denied');
      expect((await call(wharf.url, '/v2/team/app/manifests/v2')).status).toBe(404);
    },
    testTimeoutMs,
  );

  it(
    'a mirrored name is read-only for alice (405 UNSUPPORTED) and writable for root, the admin',
    async () => {
      const mirrored = `${wharf.host}/${publicHost}/team/open:hotfix`;
      await docker.docker(['tag', `${wharf.host}/team/app:v1`, mirrored]);
      await login('alice');
      const refused = await failureOf(docker.docker(['push', mirrored]), 'docker push to a mirrored name as alice');
      expect(refused.stderr).toContain(
        `unsupported: ${publicHost}/team/open is mirrored from ${publicHost} and read-only`,
      );
      await login('root');
      await docker.docker(['push', mirrored]);
      const id = (await docker.docker(['image', 'inspect', '--format', '{{.Id}}', mirrored])).stdout.trim();
      const manifest = await call(wharf.url, `/v2/${publicHost}/team/open/manifests/hotfix`, {
        headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      expect(manifest.status).toBe(200);
      expect(((await manifest.json()) as { config: { digest: string } }).config.digest).toBe(id);
      // Only wharf holds the hotfix: the upstream was never written to.
      expect((await call(publicUpstream.url, '/v2/team/open/manifests/hotfix')).status).toBe(404);
      await docker.docker(['image', 'rm', mirrored]);
    },
    testTimeoutMs,
  );

  it(
    'signed out: pulls the public local image and the public upstream image, not the private upstream image',
    async () => {
      const ref = `${wharf.host}/team/app:v1`;
      const id = (await docker.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
      await docker.docker(['logout', wharf.host]);
      await docker.docker(['image', 'rm', ref, `${wharf.host}/team/app:v2`]);
      await docker.docker(['pull', ref]);
      expect((await docker.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim()).toBe(id);
      const openRef = `${wharf.host}/${publicHost}/team/open:v1`;
      await docker.docker(['pull', openRef]);
      expect((await docker.docker(['image', 'inspect', '--format', '{{.Id}}', openRef])).stdout.trim()).toBe(
        open.images[0]?.config.digest,
      );

      const refused = await failureOf(
        docker.docker(['pull', secretName()]),
        'anonymous docker pull of private content',
      );
      expect(refused.stderr).toContain('pull access denied');
    },
    testTimeoutMs,
  );

  it(
    'reader, signed in, pulls the private upstream image through wharf',
    async () => {
      await login('reader');
      await docker.docker(['pull', secretName()]);
      const id = (await docker.docker(['image', 'inspect', '--format', '{{.Id}}', secretName()])).stdout.trim();
      expect(id).toBe(secretImage().config.digest);
    },
    testTimeoutMs,
  );
});

describe('skopeo', () => {
  const skopeo = (args: string[]): Promise<RunResult> =>
    run('skopeo', args, { timeoutMs: clientTimeoutMs, env: isolatedCredentials });
  const layout = (): string => `oci:${join(dir, 'layout')}:v1`;

  it(
    'pushes with --dest-creds (alice), is refused for reader, pulls back with --src-creds',
    async () => {
      const target = `docker://${wharf.host}/team/skopeo:v1`;
      const denied = await failureOf(
        skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', creds('reader'), layout(), target]),
        'skopeo push as reader',
      );
      expect(denied.stderr).toContain('denied: requested access to the resource is denied');
      await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', creds('alice'), layout(), target]);
      const out = join(dir, 'skopeo-out');
      await skopeo(['copy', '--src-tls-verify=false', '--src-creds', creds('reader'), target, `oci:${out}:v1`]);
      const inspect = await skopeo(['inspect', '--raw', `oci:${out}:v1`]);
      expect(JSON.parse(inspect.stdout)).toEqual(JSON.parse(pushed.root.bytes.toString('utf8')));
    },
    testTimeoutMs,
  );

  it(
    'inspects the private upstream image with reader --creds; without or with wrong credentials it fails',
    async () => {
      const ref = `docker://${secretName()}`;
      const anonymous = await failureOf(skopeo(['inspect', '--tls-verify=false', ref]), 'anonymous skopeo inspect');
      expect(anonymous.stderr).toContain('denied: requested access to the resource is denied');
      const wrong = await failureOf(
        skopeo(['inspect', '--tls-verify=false', '--creds', 'reader:wrong', ref]),
        'skopeo inspect with a wrong password',
      );
      expect(wrong.stderr).toContain('invalid username/password: unauthorized: wrong user name or password');
      const inspect = await skopeo(['inspect', '--tls-verify=false', '--creds', creds('reader'), ref]);
      expect((JSON.parse(inspect.stdout) as { Digest: string }).Digest).toBe(secret.root.digest);
    },
    testTimeoutMs,
  );
});

describe('podman', () => {
  it(
    'pulls the private upstream image after podman login into a temp auth file, and not without it',
    async () => {
      const podmanDir = join(dir, 'podman');
      await writePodmanConfig(podmanDir, {
        registriesConf: [
          'unqualified-search-registries = []',
          'short-name-mode = "disabled"',
          '',
          '[[registry]]',
          `location = ${JSON.stringify(wharf.host)}`,
          'insecure = true',
          '',
        ].join('\n'),
      });
      const authFile = join(podmanDir, 'auth.json');
      const options = {
        dir: podmanDir,
        timeoutMs: clientTimeoutMs,
        env: { ...isolatedCredentials, REGISTRY_AUTH_FILE: authFile },
      };
      await writeFile(authFile, JSON.stringify({ auths: {} }));
      const anonymous = await failureOf(podman(['pull', secretName()], options), 'podman pull without login');
      expect(anonymous.stderr).toContain('denied: requested access to the resource is denied');
      await podman(['login', '--username', 'reader', '--password-stdin', wharf.host], {
        ...options,
        input: passwords.reader,
      });
      await podman(['pull', secretName()], options);
      const image = await podmanImageInspect(secretName(), options);
      expect(`sha256:${image.id}`).toBe(secretImage().config.digest);
      expect(image.digest).toBe(secret.root.digest);
    },
    testTimeoutMs,
  );
});

describe.sequential('containerd', () => {
  let containerd: ContainerdHandle;
  beforeAll(async () => {
    containerd = await startContainerd();
  }, 60_000);
  afterAll(async () => containerd?.close());

  it(
    'ctr pull --user reader pulls the private upstream image; without credentials it fails',
    async () => {
      const ref = secretName();
      const anonymous = await failureOf(
        containerd.ctr(['image', 'pull', '--plain-http', ref], clientTimeoutMs),
        'anonymous ctr pull',
      );
      // An anonymous token grants nothing on the private name: 401 insufficient_scope.
      expect(anonymous.stderr).toContain('pull access denied');
      expect(anonymous.stderr).toContain('insufficient_scope');
      // Through a logging proxy, to see how containerd signs in: an OAuth2 password grant, POSTed.
      const proxy = await startHoldingProxy({ target: wharf.url });
      try {
        const viaProxy = `${proxy.host}/${privateHost}/team/secret:v1`;
        await containerd.ctr(['image', 'pull', '--plain-http', '--user', creds('reader'), viaProxy], clientTimeoutMs);
        const listed = (await containerd.imageList()).find((image) => image.ref === viaProxy);
        expect(listed?.digest).toBe(secret.root.digest);
        const tokenRequests = proxy.exchanges().filter((e) => e.path.startsWith('/token'));
        expect(tokenRequests.length).toBeGreaterThanOrEqual(1);
        expect(tokenRequests.every((e) => e.method === 'POST' && e.status === 200)).toBe(true);
      } finally {
        await proxy.close();
      }
    },
    testTimeoutMs,
  );

  it(
    'a hosts.toml mirror with a Basic Authorization header pulls the private image by ?ns=',
    async () => {
      const hostsDir = join(dir, 'certs.d');
      // writeHostsToml's file, plus the header containerd sends with every request to the mirror.
      const path = await writeHostsToml(hostsDir, privateHost, wharf.url);
      const header = basicHeader('reader', passwords.reader).Authorization ?? '';
      const table = `host.${JSON.stringify(wharf.url)}.header`;
      await appendFile(path, `\n[${table}]\n  Authorization = ${JSON.stringify(header)}\n`);
      const ref = `${privateHost}/team/secret:v1`;
      await containerd.pull(ref, { hostsDir, timeoutMs: clientTimeoutMs });
      const listed = (await containerd.imageList()).find((image) => image.ref === ref);
      expect(listed?.digest).toBe(secret.root.digest);
    },
    testTimeoutMs,
  );
});

// wharf's tokens here live 60 s (tokenTtlMs above), the shortest lifetime the clients accept:
// docker's token handler and containers/image treat a shorter `expires_in` as 60 s. The proxy
// holds one manifest response per client for longer than that, so each client's next request
// comes after its token expired: docker and skopeo see that from `issued_at` + `expires_in` and
// fetch a new one; containerd asks for a token again for each new fetcher after the resolve.
describe('a token that expires in the middle of a pull', () => {
  const holdMs = 62_000;

  it(
    'docker, skopeo and containerd fetch a new token and finish the pull',
    async () => {
      const proxy = await startHoldingProxy({
        target: wharf.url,
        holdMs,
        shouldHold: (e) => e.status === 200 && e.authorization === 'Bearer' && e.path.endsWith('/manifests/v1'),
      });
      const docker = await startDockerd({ insecureRegistries: [proxy.host] });
      const containerd = await startContainerd();
      try {
        const ref = `${proxy.host}/${privateHost}/team/secret:v1`;
        const layout = `oci:${join(dir, 'late')}:v1`;
        await docker.docker(['login', '--username', 'reader', '--password-stdin', proxy.host], {
          input: passwords.reader,
        });
        const pullTimeoutMs = holdMs + 120_000;
        const outcomes = await Promise.allSettled([
          docker.docker(['pull', ref], { timeoutMs: pullTimeoutMs }),
          run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds('reader'), `docker://${ref}`, layout], {
            timeoutMs: pullTimeoutMs,
            env: isolatedCredentials,
          }),
          containerd.ctr(['image', 'pull', '--plain-http', '--user', creds('reader'), ref], pullTimeoutMs),
        ]);
        expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? String(outcome.reason) : 'ok'))).toEqual([
          'ok',
          'ok',
          'ok',
        ]);
        const exchanges = proxy.exchanges();
        expect(exchanges.filter((e) => e.wwwAuthenticate?.includes('invalid_token') === true)).toEqual([]);
        for (const client of ['docker/', 'skopeo/', 'containerd/']) {
          const mine = exchanges.filter((e) => e.userAgent?.startsWith(client) === true);
          const held = mine.filter((e) => e.held);
          expect(held, client).toHaveLength(1);
          const heldAt = held[0]?.at ?? Number.POSITIVE_INFINITY;
          const renewed = mine.filter(
            (e) => e.path.startsWith('/token') && e.status === 200 && e.at >= heldAt + 60_000,
          );
          expect(renewed.length, `${client} fetched a token after the first one expired`).toBeGreaterThanOrEqual(1);
        }
        expect((await docker.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim()).toBe(
          secretImage().config.digest,
        );
        const copied = await run('skopeo', ['inspect', '--raw', layout], { timeoutMs: clientTimeoutMs });
        expect(copied.stdout).toBe(secret.root.bytes.toString('utf8'));
        expect((await containerd.imageList()).find((image) => image.ref === ref)?.digest).toBe(secret.root.digest);
      } finally {
        await containerd.close();
        await docker.close();
        await proxy.close();
      }
    },
    testTimeoutMs,
  );
});
