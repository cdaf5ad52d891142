/**
 * Client authentication and authorization over HTTP (issue 8): the docker token flow and Basic,
 * roles per repository pattern, mirrored names read-only except for admins, private upstream
 * content behind credentials (finding 3), mounts limited to what a client may read, failed
 * sign-ins rate limited. Real wharf, real CNCF distribution upstreams (one behind htpasswd).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthSettings } from '../src/cli/auth-config.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName } from '../src/oci/reference.js';
import { countAnyRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call, errorCode, pushImage, sha256 } from './support/http.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const privateHost = 'private.example.test';
const publicHost = 'public.example.test';
const accept = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/** The docker token flow's second step: GET /token with optional Basic credentials. */
async function fetchToken(base: string, scopes: string[], credentials?: [string, string]): Promise<string> {
  const query = new URLSearchParams({ service: 'wharf' });
  for (const scope of scopes) query.append('scope', scope);
  const response = await call(base, `/token?${query.toString()}`, {
    headers: credentials === undefined ? {} : basic(...credentials),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

function grantedActions(token: string, name: string): string[] {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
    access: { name: string; actions: string[] }[];
  };
  return payload.access.find((entry) => entry.name === name)?.actions ?? [];
}

const users = {
  alice: 'alice-pw',
  reader: 'reader-pw',
  intern: 'intern-pw',
  root: 'root-pw',
  vendor: 'vendor-pw',
};

function authSettings(extra: Partial<AuthSettings> = {}): AuthSettings {
  return {
    users: new Map(Object.entries(users).map(([user, password]) => [user, bcrypt.hashSync(password, 4)])),
    access: [
      { repositories: ['**'], users: ['root'], allow: ['admin'] },
      { repositories: ['team/**'], users: ['alice'], allow: ['pull', 'push', 'delete'] },
      { repositories: ['team/**'], users: ['intern'], allow: ['pull', 'push'] },
      { repositories: ['**'], users: ['alice', 'reader'], allow: ['pull'] },
      { repositories: ['**'], users: ['anonymous'], allow: ['pull'] },
    ],
    tokenTtlMs: 60_000,
    realm: undefined,
    ...extra,
  };
}

let dir: string;
let privateUpstream: DistributionHandle;
let publicUpstream: DistributionHandle;
let wharf: WharfHandle;
let secret: TestImage;
let open: TestImage;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-client-auth-'));
  privateUpstream = await startDistribution({ htpasswd: { user: 'user', password: 'pass' } });
  publicUpstream = await startDistribution();
  secret = await makeImage({ seed: testSeed('client-auth-secret'), layers: 1 });
  open = await makeImage({ seed: testSeed('client-auth-open'), layers: 1 });
  await pushTestImage(privateUpstream.url, 'team/secret', 'v1', secret, basic('user', 'pass'));
  await pushTestImage(publicUpstream.url, 'team/open', 'v1', open);
  wharf = await startWharf({
    upstreams: [
      { host: privateHost, url: privateUpstream.url, username: 'user', password: 'pass' },
      { host: publicHost, url: publicUpstream.url },
    ],
    auth: authSettings(),
  });
}, 120_000);

afterAll(async () => {
  await wharf?.close();
  await privateUpstream?.close();
  await publicUpstream?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('signing in', () => {
  it('challenges anonymous clients at /v2/ with the token realm, and lets Basic and tokens in', async () => {
    const anonymous = await call(wharf.url, '/v2/');
    expect(anonymous.status).toBe(401);
    expect(await errorCode(anonymous)).toBe('UNAUTHORIZED');
    expect(anonymous.headers.get('www-authenticate')).toBe(`Bearer realm="${wharf.url}/token",service="wharf"`);
    expect((await call(wharf.url, '/v2/', { headers: basic('alice', users.alice) })).status).toBe(200);
    const token = await fetchToken(wharf.url, [], ['alice', users.alice]);
    expect((await call(wharf.url, '/v2/', { headers: bearer(token) })).status).toBe(200);
  });

  it('answers wrong credentials with 401, on /v2/ and at /token', async () => {
    const wrong = await call(wharf.url, '/v2/', { headers: basic('alice', 'nope') });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Bearer realm=');
    const token = await call(wharf.url, '/token?service=wharf', { headers: basic('alice', 'nope') });
    expect(token.status).toBe(401);
    expect(await errorCode(token)).toBe('UNAUTHORIZED');
  });

  it('refuses a tampered or foreign token with invalid_token', async () => {
    const token = await fetchToken(wharf.url, ['repository:team/app:pull'], ['alice', users.alice]);
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
    claims['sub'] = 'root';
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    const response = await call(wharf.url, '/v2/team/app/tags/list', { headers: bearer(forged) });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('takes containerd-style OAuth2 password grants by POST', async () => {
    const response = await call(wharf.url, '/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'alice',
        password: users.alice,
        service: 'wharf',
        scope: 'repository:team/app:pull,push',
        client_id: 'containerd-client',
      }).toString(),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { access_token: string; scope: string };
    expect(body.scope).toBe('repository:team/app:pull,push');
    expect(grantedActions(body.access_token, 'team/app')).toEqual(['pull', 'push']);
  });

  it('answers /token by GET with every scope parameter, and anonymous tokens name no user', async () => {
    const query = 'service=wharf&scope=repository:team/a:pull&scope=repository:team/b:pull%20registry:catalog:*';
    const response = await call(wharf.url, `/token?${query}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(60);
    const payload = JSON.parse(Buffer.from(body.token.split('.')[1] ?? '', 'base64url').toString()) as {
      sub: string;
      access: unknown[];
    };
    expect(payload.sub).toBe('');
    expect(payload.access).toEqual([
      { type: 'repository', name: 'team/a', actions: ['pull'] },
      { type: 'repository', name: 'team/b', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('refuses OAuth2 grants other than password, and forms over 16 KiB however they are sent', async () => {
    const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
    const post = (body: string, headers: Record<string, string> = {}) =>
      call(wharf.url, '/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
        body,
      });
    const refresh = await post(form({ grant_type: 'refresh_token', refresh_token: 'x' }));
    expect(refresh.status).toBe(400);
    expect(await refresh.json()).toEqual({ error: 'unsupported_grant_type' });
    // Exactly 16 KiB is still a form; one byte more is not.
    const base = form({ grant_type: 'password', scope: 'repository:team/app:pull', pad: '' });
    const exact = base + 'x'.repeat(16 * 1024 - base.length);
    expect(Buffer.byteLength(exact)).toBe(16 * 1024);
    const ok = await post(exact);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { scope: string }).scope).toBe('repository:team/app:pull');
    const over = await post(`${exact}x`);
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({ errors: [{ code: 'DENIED', message: 'token request form too large' }] });
    // Without a Content-Length the body is counted as it arrives.
    const chunked = (body: string) =>
      call(wharf.url, '/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new Blob([body]).stream(),
        duplex: 'half',
      });
    expect((await chunked(exact)).status).toBe(200);
    const chunkedOver = await chunked(`${exact}x`);
    expect(chunkedOver.status).toBe(413);
    expect(await chunkedOver.json()).toMatchObject({
      errors: [{ code: 'DENIED', message: 'token request form too large' }],
    });
    // The OAuth2 answer lists every scope granted, space-separated.
    const two = await post(form({ grant_type: 'password', scope: 'repository:team/a:pull repository:team/b:pull' }));
    expect(((await two.json()) as { scope: string }).scope).toBe('repository:team/a:pull repository:team/b:pull');
  });

  it('refuses a declared form over 16 KiB before reading its body', async () => {
    // The body never comes: only a refusal on the declared length can answer.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(wharf.url).port), '127.0.0.1');
      let text = '';
      socket.setTimeout(10_000, () => {
        socket.destroy();
        reject(new Error('no answer to a declared 16 KiB + 1 form within 10 s'));
      });
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.write(
        'POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
          `Content-Length: ${16 * 1024 + 1}\r\n\r\ngrant_type=password`,
      );
    });
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large');
  });
});

describe('rights per repository', () => {
  it('lets anonymous clients pull public local content and asks them to sign in to push', async () => {
    const pushed = await pushImage(wharf.url, 'team/app', 'v1', 'anon-pull', {}, basic('alice', users.alice));
    const pulled = await call(wharf.url, '/v2/team/app/manifests/v1');
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('docker-content-digest')).toBe(pushed.digest);
    const push = await call(wharf.url, `/v2/team/app/blobs/uploads/`, { method: 'POST' });
    expect(push.status).toBe(401);
    expect(push.headers.get('www-authenticate')).toBe(
      `Bearer realm="${wharf.url}/token",service="wharf",scope="repository:team/app:pull,push"`,
    );
  });

  it('answers a signed-in client without the right with 403 DENIED (Basic) or insufficient_scope (token)', async () => {
    const denied = await call(wharf.url, '/v2/team/app/blobs/uploads/', {
      method: 'POST',
      headers: basic('reader', users.reader),
    });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe('DENIED');
    const token = await fetchToken(wharf.url, ['repository:team/app:pull,push'], ['reader', users.reader]);
    expect(grantedActions(token, 'team/app')).toEqual(['pull']);
    const withToken = await call(wharf.url, '/v2/team/app/blobs/uploads/', { method: 'POST', headers: bearer(token) });
    expect(withToken.status).toBe(401);
    expect(withToken.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    // alice may push under team/ only.
    const elsewhere = await call(wharf.url, '/v2/other/app/blobs/uploads/', {
      method: 'POST',
      headers: basic('alice', users.alice),
    });
    expect(elsewhere.status).toBe(403);
  });

  it('pushes and deletes through the token flow with the rights granted', async () => {
    const token = await fetchToken(wharf.url, ['repository:team/flow:pull,push,delete'], ['alice', users.alice]);
    expect(grantedActions(token, 'team/flow')).toEqual(['pull', 'push', 'delete']);
    const pushed = await pushImage(wharf.url, 'team/flow', 'v1', 'flow', {}, bearer(token));
    const deleted = await call(wharf.url, `/v2/team/flow/manifests/${pushed.digest}`, {
      method: 'DELETE',
      headers: bearer(token),
    });
    expect(deleted.status).toBe(202);
  });

  // Round 3 of the planted-bug audit (docs/mutation-testing.md): DELETE asking for push instead of delete passed.
  it('refuses a delete to a user who may push but not delete', async () => {
    const pushed = await pushImage(wharf.url, 'team/kept', 'v1', 'intern-delete', {}, basic('intern', users.intern));
    const denied = await call(wharf.url, `/v2/team/kept/manifests/${pushed.digest}`, {
      method: 'DELETE',
      headers: basic('intern', users.intern),
    });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe('DENIED');
    const token = await fetchToken(wharf.url, ['repository:team/kept:pull,push,delete'], ['intern', users.intern]);
    expect(grantedActions(token, 'team/kept')).toEqual(['pull', 'push']);
    const withToken = await call(wharf.url, `/v2/team/kept/manifests/${pushed.digest}`, {
      method: 'DELETE',
      headers: bearer(token),
    });
    expect(withToken.status).toBe(401);
    expect(withToken.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    const still = await call(wharf.url, '/v2/team/kept/manifests/v1');
    expect(still.headers.get('docker-content-digest')).toBe(pushed.digest);
  });

  // Round 7c: a blob DELETE asking for push instead of delete passed; the test above deletes manifests only.
  it('refuses a blob delete to a user who may push but not delete', async () => {
    const intern = basic('intern', users.intern);
    const pushed = await pushImage(wharf.url, 'team/kept-blob', 'v1', 'intern-blob-delete', {}, intern);
    const path = `/v2/team/kept-blob/blobs/${pushed.config}`;
    const denied = await call(wharf.url, path, { method: 'DELETE', headers: intern });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe('DENIED');
    const token = await fetchToken(wharf.url, ['repository:team/kept-blob:pull,push,delete'], ['intern', users.intern]);
    const withToken = await call(wharf.url, path, { method: 'DELETE', headers: bearer(token) });
    expect(withToken.status).toBe(401);
    expect(withToken.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect((await call(wharf.url, path, { method: 'HEAD' })).status).toBe(200);
    // alice may delete there: the same request goes through for her.
    const allowed = await call(wharf.url, path, { method: 'DELETE', headers: basic('alice', users.alice) });
    expect(allowed.status).toBe(202);
  });

  // Round 7c: the requests on an open upload session (PATCH, PUT, GET, DELETE) asking for pull instead of
  // push passed; every test was refused at the POST that opens a session, never after it.
  it('refuses every request on an open upload session to a client that may pull but not push', async () => {
    const alice = basic('alice', users.alice);
    const opened = await call(wharf.url, '/v2/team/session/blobs/uploads/', { method: 'POST', headers: alice });
    expect(opened.status).toBe(202);
    const location = opened.headers.get('location') ?? '';
    expect(location).toMatch(/^\/v2\/team\/session\/blobs\/uploads\/./);
    const bytes = Buffer.from('bytes of a session opened by alice');
    const finish = `${location}?digest=${sha256(bytes)}`;
    const reader = basic('reader', users.reader);
    const attempts: [string, string, RequestInit][] = [
      ['GET', location, {}],
      ['PATCH', location, { body: bytes, headers: { 'Content-Range': `0-${bytes.length - 1}` } }],
      ['PUT', finish, { body: bytes }],
      ['DELETE', location, {}],
    ];
    for (const [method, path, init] of attempts) {
      const headers = { ...reader, ...(init.headers as Record<string, string> | undefined) };
      const refused = await call(wharf.url, path, { ...init, method, headers });
      expect(refused.status, method).toBe(403);
      expect(await errorCode(refused), method).toBe('DENIED');
    }
    const token = await fetchToken(wharf.url, ['repository:team/session:pull,push'], ['reader', users.reader]);
    const withToken = await call(wharf.url, finish, { method: 'PUT', body: bytes, headers: bearer(token) });
    expect(withToken.status).toBe(401);
    expect(withToken.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    // The session is as alice left it: empty, and hers to finish.
    const status = await call(wharf.url, location, { headers: alice });
    expect(status.status).toBe(204);
    const done = await call(wharf.url, finish, { method: 'PUT', body: bytes, headers: alice });
    expect(done.status).toBe(201);
    const blob = await call(wharf.url, `/v2/team/session/blobs/${sha256(bytes)}`);
    expect(Buffer.from(await blob.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('keeps mirrored names read-only for everyone but an admin, whose push is what clients then get', async () => {
    const name = `${publicHost}/team/open`;
    expect((await call(wharf.url, `/v2/${name}/manifests/v1`, { headers: { Accept: accept } })).status).toBe(200);
    const refused = await call(wharf.url, `/v2/${name}/blobs/uploads/`, {
      method: 'POST',
      headers: basic('alice', users.alice),
    });
    expect(refused.status).toBe(405);
    expect(await errorCode(refused)).toBe('UNSUPPORTED');
    const anonymous = await call(wharf.url, `/v2/${name}/manifests/v1`, { method: 'DELETE' });
    expect(anonymous.status).toBe(401);
    const hotfix = await pushImage(wharf.url, name, 'hotfix', 'admin-hotfix', {}, basic('root', users.root));
    const got = await call(wharf.url, `/v2/${name}/manifests/hotfix`);
    expect(got.headers.get('docker-content-digest')).toBe(hotfix.digest);
    const tags = (await (await call(wharf.url, `/v2/${name}/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['hotfix', 'v1']);
    // Round 3: the admin's tag is authoritative, never revalidated. With the upstream now holding another
    // image under the same tag, the pull still gets the admin's, and the upstream is never asked about it.
    await pushTestImage(publicUpstream.url, 'team/open', 'hotfix', open);
    const before = (await publicUpstream.settledLogs()).length;
    const again = await call(wharf.url, `/v2/${name}/manifests/hotfix`, { headers: { Accept: accept } });
    expect(again.headers.get('docker-content-digest')).toBe(hotfix.digest);
    await again.arrayBuffer();
    const asked = (await publicUpstream.settledLogs()).slice(before);
    expect(countAnyRequests(asked, '/v2/team/open/manifests/hotfix')).toBe(0);
  });
});

// Round 2 of the planted-bug audit (docs/mutation-testing.md): an admin's push to a mirrored name
// asked for with ?ns= (containerd's form) was filed under the bare name, a local one, when the
// rewrite to the canonical name was dropped; the test above pushes with the canonical name only.
describe('a push to a mirrored name with ?ns=', () => {
  const ns = `ns=${publicHost}`;
  const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', seed: 'ns-hotfix' });
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(configBytes),
        size: configBytes.length,
      },
      layers: [],
    }),
  );

  it('is refused for a user who may push the local name, and filed under the canonical name for an admin', async () => {
    const refused = await call(wharf.url, `/v2/team/open/blobs/uploads/?${ns}`, {
      method: 'POST',
      headers: basic('alice', users.alice),
    });
    expect(refused.status).toBe(405);
    expect(await errorCode(refused)).toBe('UNSUPPORTED');

    const root = basic('root', users.root);
    const blob = await call(wharf.url, `/v2/team/open/blobs/uploads/?${ns}&digest=${sha256(configBytes)}`, {
      method: 'POST',
      body: configBytes,
      headers: root,
    });
    expect(blob.status).toBe(201);
    const put = await call(wharf.url, `/v2/team/open/manifests/ns-hotfix?${ns}`, {
      method: 'PUT',
      body: manifestBytes,
      headers: { ...root, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(put.status).toBe(201);
    // Clients asking either way get it; the local name team/open has nothing.
    for (const path of [`/v2/${publicHost}/team/open/manifests/ns-hotfix`, `/v2/team/open/manifests/ns-hotfix?${ns}`]) {
      const got = await call(wharf.url, path, { headers: { Accept: accept } });
      expect(got.status, path).toBe(200);
      expect(got.headers.get('docker-content-digest')).toBe(sha256(manifestBytes));
    }
    const local = await call(wharf.url, '/v2/team/open/manifests/ns-hotfix', { headers: { Accept: accept, ...root } });
    expect(local.status).toBe(404);
    expect(await errorCode(local)).toBe('MANIFEST_UNKNOWN');

    // Round 3: the admin's delete with ?ns= goes to the canonical name too (it went to the bare, local name).
    const deleted = await call(wharf.url, `/v2/team/open/manifests/${sha256(manifestBytes)}?${ns}`, {
      method: 'DELETE',
      headers: root,
    });
    expect(deleted.status).toBe(202);
    const gone = await call(wharf.url, `/v2/${publicHost}/team/open/manifests/ns-hotfix`, {
      headers: { Accept: accept },
    });
    expect(gone.status).toBe(404);
  });
});

// Issue 8, finding 3: with credentials for a protected upstream, an anonymous client pulled the
// private image, listed its tags and saw it in _catalog.
describe('private upstream content', () => {
  const name = `${privateHost}/team/secret`;

  it('is served to signed-in clients with pull rights only', async () => {
    const anonymous = await call(wharf.url, `/v2/${name}/manifests/v1`, { headers: { Accept: accept } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain(`scope="repository:${name}:pull"`);
    const reader = await call(wharf.url, `/v2/${name}/manifests/v1`, {
      headers: { Accept: accept, ...basic('reader', users.reader) },
    });
    expect(reader.status).toBe(200);
    expect(reader.headers.get('docker-content-digest')).toBe(secret.root.digest);
    // Now it is cached: still not for anonymous clients, by tag, digest, blob or listing.
    expect((await call(wharf.url, `/v2/${name}/manifests/${secret.root.digest}`)).status).toBe(401);
    const layer = secret.images[0]?.layers[0]?.digest ?? '';
    expect((await call(wharf.url, `/v2/${name}/blobs/${layer}`)).status).toBe(401);
    expect((await call(wharf.url, `/v2/${name}/tags/list`)).status).toBe(401);
    // Round 7c: HEAD let through unchecked ("it only tells existence") was caught by the real clients alone.
    for (const path of [`/v2/${name}/manifests/v1`, `/v2/${name}/blobs/${layer}`]) {
      const head = await call(wharf.url, path, { method: 'HEAD', headers: { Accept: accept } });
      expect(head.status, path).toBe(401);
      expect(head.headers.get('docker-content-digest'), path).toBeNull();
    }
    const anonymousToken = await fetchToken(wharf.url, [`repository:${name}:pull`]);
    expect(grantedActions(anonymousToken, name)).toEqual([]);
  });

  // Round 7a (docs/mutation-testing.md): a name classified private only when it named its upstream
  // in the path (not through ?ns=, as containerd asks) passed every test: each went through the path.
  it('is not served to anonymous clients through ?ns= either, however it is asked for', async () => {
    const reader = await call(wharf.url, `/v2/team/secret/manifests/v1?ns=${privateHost}`, {
      headers: { Accept: accept, ...basic('reader', users.reader) },
    });
    expect(reader.status).toBe(200);
    const layer = secret.images[0]?.layers[0]?.digest ?? '';
    for (const path of [
      `/v2/team/secret/manifests/v1?ns=${privateHost}`,
      `/v2/team/secret/manifests/${secret.root.digest}?ns=${privateHost}`,
      `/v2/team/secret/blobs/${layer}?ns=${privateHost}`,
      `/v2/team/secret/tags/list?ns=${privateHost}`,
    ]) {
      const anonymous = await call(wharf.url, path, { headers: { Accept: accept } });
      expect(anonymous.status, path).toBe(401);
    }
  });

  it('cannot be mounted by a client that may push elsewhere but not read it', async () => {
    const layer = secret.images[0]?.layers[0]?.digest ?? '';
    // reader fetches the layer: it is in the store now.
    const fetched = await call(wharf.url, `/v2/${name}/blobs/${layer}`, { headers: basic('reader', users.reader) });
    expect(sha256(Buffer.from(await fetched.arrayBuffer()))).toBe(layer);
    // The link into the name is recorded once the fill's file is committed, just after the body ends.
    const deadline = Date.now() + 10_000;
    while ((await wharf.server.store.openBlob(name as RepoName, layer as Digest)) === undefined) {
      if (Date.now() > deadline) throw new Error('the filled layer was never linked into its name');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const intern = basic('intern', users.intern);
    const named = await call(wharf.url, `/v2/team/intern/blobs/uploads/?mount=${layer}&from=${name}`, {
      method: 'POST',
      headers: intern,
    });
    expect(named.status).toBe(202);
    const automatic = await call(wharf.url, `/v2/team/intern/blobs/uploads/?mount=${layer}`, {
      method: 'POST',
      headers: intern,
    });
    expect(automatic.status).toBe(202);
    expect((await call(wharf.url, `/v2/team/intern/blobs/${layer}`, { headers: intern })).status).toBe(404);
    // alice may read it, so she may mount it.
    const alice = await call(wharf.url, `/v2/team/alice/blobs/uploads/?mount=${layer}`, {
      method: 'POST',
      headers: basic('alice', users.alice),
    });
    expect(alice.status).toBe(201);
  });

  it('is left out of the catalog for clients that may not pull it', async () => {
    await call(wharf.url, `/v2/${name}/manifests/v1`, {
      headers: { Accept: accept, ...basic('reader', users.reader) },
    });
    const anonymous = (await (await call(wharf.url, '/v2/_catalog')).json()) as { repositories: string[] };
    expect(anonymous.repositories).not.toContain(name);
    const reader = (await (
      await call(wharf.url, '/v2/_catalog', { headers: basic('reader', users.reader) })
    ).json()) as { repositories: string[] };
    expect(reader.repositories).toContain(name);
    // Round 7c: a catalog filtered for anonymous clients only, or one that classified each name under the
    // request's ?ns= (where the private name became a public upstream's path), both listed it.
    const intern = (await (
      await call(wharf.url, '/v2/_catalog', { headers: basic('intern', users.intern) })
    ).json()) as { repositories: string[] };
    expect(intern.repositories).not.toContain(name);
    expect(intern.repositories).toContain('team/app');
    for (const ns of [publicHost, privateHost]) {
      const scoped = (await (await call(wharf.url, `/v2/_catalog?ns=${ns}`)).json()) as { repositories: string[] };
      expect(scoped.repositories, ns).not.toContain(name);
      expect(scoped.repositories, ns).toContain('team/app');
    }
  });
});

// Round 2 of the planted-bug audit: containerd asks a mirror for `team/secret` with
// ?ns=private.example.test and a token scoped to the bare name. A token whose rights left out the
// name's ?ns= forms passed every test above, because every user there may pull the bare local name too.
describe('a user whose only right is on one upstream', () => {
  let vendorOnly: WharfHandle;
  beforeAll(async () => {
    vendorOnly = await startWharf({
      // Prefetch on (the default): this wharf closes right after its one pull, with prefetches of
      // its layers in flight. That close once hung in CI: a prefetch aborted between the upstream's
      // answer and its first read waited forever on a destroyed body (upstream-body-closed.test.ts).
      upstreams: [
        { host: privateHost, url: privateUpstream.url, username: 'user', password: 'pass' },
        { host: publicHost, url: publicUpstream.url },
      ],
      auth: authSettings({ access: [{ repositories: [`${privateHost}/**`], users: ['vendor'], allow: ['pull'] }] }),
    });
  }, 60_000);
  afterAll(async () => {
    await vendorOnly?.close();
  });

  it('gets a token for the bare name that pulls it with ?ns=, and nothing else', async () => {
    const token = await fetchToken(vendorOnly.url, ['repository:team/secret:pull'], ['vendor', users.vendor]);
    expect(grantedActions(token, 'team/secret')).toEqual(['pull']);
    const mirrored = await call(vendorOnly.url, `/v2/team/secret/manifests/v1?ns=${privateHost}`, {
      headers: { Accept: accept, ...bearer(token) },
    });
    const body = await mirrored.text();
    expect(mirrored.status, body).toBe(200);
    expect(mirrored.headers.get('docker-content-digest')).toBe(secret.root.digest);
    // The same token does not open the local name team/secret, nor the other upstream's form.
    for (const path of ['/v2/team/secret/manifests/v1', `/v2/team/secret/manifests/v1?ns=${publicHost}`]) {
      const refused = await call(vendorOnly.url, path, { headers: { Accept: accept, ...bearer(token) } });
      expect(refused.status, path).toBe(401);
      expect(refused.headers.get('www-authenticate'), path).toContain('error="insufficient_scope"');
    }
  });
});

describe('without users', () => {
  let bare: WharfHandle;
  beforeAll(async () => {
    bare = await startWharf({
      upstreams: [
        { host: privateHost, url: privateUpstream.url, username: 'user', password: 'pass' },
        { host: publicHost, url: publicUpstream.url, username: 'user', password: 'pass', public: true },
      ],
    });
  });
  afterAll(async () => bare?.close());

  it('serves private upstream content to nobody (403), and public: true opts out', async () => {
    const denied = await call(bare.url, `/v2/${privateHost}/team/secret/manifests/v1`, { headers: { Accept: accept } });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe('DENIED');
    const viaNs = await call(bare.url, `/v2/team/secret/manifests/v1?ns=${privateHost}`, {
      headers: { Accept: accept },
    });
    expect(viaNs.status).toBe(403);
    const opted = await call(bare.url, `/v2/${publicHost}/team/open/manifests/v1`, { headers: { Accept: accept } });
    expect(opted.status).toBe(200);
  });

  // Round 7c: a registry without users that took every name as readable ("nobody signs in: all is open")
  // listed private content already in its store and let anyone mount it. Such content gets there from
  // an earlier run with users, or an import: here it is written into the store directly.
  it('keeps private content already in the store out of the catalog and out of mounts', async () => {
    const privateName = `${privateHost}/team/secret` as RepoName;
    const bytes = Buffer.from('a private layer kept from a run with users');
    const digest = sha256(bytes) as Digest;
    await bare.server.store.putBlob(privateName, digest, once(bytes), bytes.byteLength);
    const seen = Buffer.from('a local layer');
    await bare.server.store.putBlob('local/seen' as RepoName, sha256(seen) as Digest, once(seen), seen.byteLength);
    const catalog = (await (await call(bare.url, '/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog.repositories).toContain('local/seen');
    expect(catalog.repositories).not.toContain(privateName);
    const named = await call(bare.url, `/v2/local/app/blobs/uploads/?mount=${digest}&from=${privateName}`, {
      method: 'POST',
    });
    expect(named.status).toBe(202);
    const automatic = await call(bare.url, `/v2/local/app/blobs/uploads/?mount=${digest}`, { method: 'POST' });
    expect(automatic.status).toBe(202);
    expect((await call(bare.url, `/v2/local/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
  });
});

// Round 7c: with a default upstream, a plain name is mirrored. An admin's push there that skipped the
// rename to the canonical name (done only for ?ns=, say) went to a local name that no read ever
// reaches: the push answered 201 and every client went on getting the upstream's image.
describe('an admin push to a plain name under the default upstream', () => {
  let withDefault: WharfHandle;
  beforeAll(async () => {
    withDefault = await startWharf({
      upstreams: [{ host: publicHost, url: publicUpstream.url }],
      defaultUpstream: publicHost,
      auth: authSettings(),
    });
  }, 60_000);
  afterAll(async () => withDefault?.close());

  it('is filed under the canonical name, so clients naming it either way get it; others may not push there', async () => {
    const root = basic('root', users.root);
    const hotfix = await pushImage(withDefault.url, 'team/open', 'plain-hotfix', 'plain-hotfix', {}, root);
    for (const path of ['/v2/team/open/manifests/plain-hotfix', `/v2/${publicHost}/team/open/manifests/plain-hotfix`]) {
      const got = await call(withDefault.url, path, { headers: { Accept: accept } });
      expect(got.status, path).toBe(200);
      expect(got.headers.get('docker-content-digest'), path).toBe(hotfix.digest);
    }
    const tags = (await (await call(withDefault.url, '/v2/team/open/tags/list')).json()) as { tags: string[] };
    expect(tags.tags).toContain('plain-hotfix');
    // alice may push team/** where it is local; here team/open is the upstream's, read-only to her.
    const refused = await call(withDefault.url, '/v2/team/open/blobs/uploads/', {
      method: 'POST',
      headers: basic('alice', users.alice),
    });
    expect(refused.status).toBe(405);
    expect(await errorCode(refused)).toBe('UNSUPPORTED');
  });
});

describe('failed sign-ins', () => {
  it('are rate limited per address: past the limit even the right password waits (429, Retry-After)', async () => {
    const limited = await startWharf({ auth: authSettings() });
    try {
      for (let i = 0; i < 10; i++) {
        expect((await call(limited.url, '/v2/', { headers: basic('alice', `wrong-${i}`) })).status).toBe(401);
      }
      const locked = await call(limited.url, '/v2/', { headers: basic('alice', users.alice) });
      expect(locked.status).toBe(429);
      expect(await errorCode(locked)).toBe('TOOMANYREQUESTS');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      const token = await call(limited.url, '/token?service=wharf', { headers: basic('alice', users.alice) });
      expect(token.status).toBe(429);
    } finally {
      await limited.close();
    }
  });

  it('expired tokens are refused with invalid_token', async () => {
    const quick = await startWharf({ auth: authSettings({ tokenTtlMs: 1000 }) });
    try {
      const token = await fetchToken(quick.url, [], ['alice', users.alice]);
      expect((await call(quick.url, '/v2/', { headers: bearer(token) })).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const expired = await call(quick.url, '/v2/', { headers: bearer(token) });
      expect(expired.status).toBe(401);
      expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"');
    } finally {
      await quick.close();
    }
  });
});
