/**
 * ClientAuth on real parts (a user table with a bcrypt hash, the access policy, the token
 * issuer, the login limiter): every refusal is the answer clients expect, with the exact
 * status, code and challenge. test/client-auth.test.ts covers the same over HTTP with real clients' flows.
 */
import bcrypt from 'bcryptjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isOciError, type OciError } from '../../oci/errors.js';
import { AccessPolicy, defaultRules, type NameClass } from './access-policy.js';
import { ClientAuth, parseBasic, userOf, type Identity } from './client-auth.js';
import { LoginLimiter } from './login-limiter.js';
import { TokenIssuer } from './tokens.js';
import { UserTable } from './user-table.js';

const local: NameClass = { mirrored: false, private: false, storeName: 'team/app' };
const mirrored: NameClass = {
  mirrored: true,
  private: false,
  storeName: 'docker.io/library/alpine',
  upstream: 'docker.io',
};
const privateName: NameClass = { mirrored: true, private: true, storeName: 'ghcr.io/corp/x', upstream: 'ghcr.io' };
const plain = { host: 'registry.test:5000', secure: false };
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let users: UserTable;
beforeAll(async () => {
  users = new UserTable(new Map([['alice', await bcrypt.hash('right', 4)]]));
});

function auth(options: { withUsers?: boolean; realm?: string; policy?: AccessPolicy } = {}): ClientAuth {
  const withUsers = options.withUsers ?? true;
  return new ClientAuth({
    users: withUsers ? users : new UserTable(new Map()),
    policy: options.policy ?? new AccessPolicy(defaultRules(withUsers)),
    tokens: new TokenIssuer('wharf', 300),
    limiter: new LoginLimiter({ maxFailures: 2, windowMs: 60_000 }),
    ...(options.realm === undefined ? {} : { realm: options.realm }),
  });
}

/** The OciError `run` throws (it must throw one). */
async function refusal(run: () => unknown): Promise<OciError> {
  try {
    await run();
  } catch (error) {
    if (isOciError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal, got none');
}

const challengeOf = (error: OciError): string | undefined => error.headers?.['WWW-Authenticate'];

describe('parseBasic', () => {
  it('reads Basic credentials, whatever the scheme case; the password may hold colons', () => {
    expect(parseBasic(basic('alice', 'a:b'))).toEqual({ user: 'alice', password: 'a:b' });
    expect(parseBasic(`bAsIc   ${Buffer.from('bob:').toString('base64')}  `)).toEqual({ user: 'bob', password: '' });
  });

  it('is undefined for no header, another scheme, no user or no colon', () => {
    expect(parseBasic(undefined)).toBeUndefined();
    expect(parseBasic('Bearer abc')).toBeUndefined();
    expect(parseBasic('Basicx abc')).toBeUndefined();
    expect(parseBasic(`Basic ${Buffer.from(':pw').toString('base64')}`)).toBeUndefined();
    expect(parseBasic(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toBeUndefined();
    // Another scheme carrying what would decode as user:password, or "basic " not at the start.
    const credentials = Buffer.from('alice:pw').toString('base64');
    expect(parseBasic(`Bearer ${credentials}`)).toBeUndefined();
    expect(parseBasic(`Xbasic ${credentials}`)).toBeUndefined();
  });
});

describe('identify', () => {
  it('is anonymous without a header or with a blank one', async () => {
    expect(await auth().identify(undefined, () => '1.2.3.4', plain)).toEqual({ kind: 'anonymous' });
    expect(await auth().identify('   ', () => '1.2.3.4', plain)).toEqual({ kind: 'anonymous' });
  });

  it('signs in with Basic and with a token this registry issued, and reads the user back', async () => {
    const client = auth();
    expect(await client.identify(basic('alice', 'right'), () => '1.2.3.4', plain)).toEqual({
      kind: 'basic',
      user: 'alice',
    });
    const { token } = await client.tokens.issue({ sub: 'alice', access: [] });
    const bearer = await client.identify(`bearer  ${token}`, () => '1.2.3.4', plain);
    expect(bearer).toEqual({ kind: 'bearer', user: 'alice', claims: { sub: 'alice', access: [] } });
    const anonymousToken = (await client.tokens.issue({ sub: '', access: [] })).token;
    const anon = await client.identify(`Bearer ${anonymousToken}`, () => '1.2.3.4', plain);
    expect(anon).toMatchObject({ kind: 'bearer', user: undefined });
    expect(userOf(anon)).toBeUndefined();
    expect(userOf({ kind: 'basic', user: 'alice' })).toBe('alice');
    expect(userOf({ kind: 'anonymous' })).toBeUndefined();
  });

  it('answers a bad token with 401 invalid_token and a challenge naming the realm and service', async () => {
    const error = await refusal(() => auth().identify('Bearer nonsense', () => '1.2.3.4', plain));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toBe('the bearer token is invalid or expired');
    // "bearer " only counts at the start.
    const notBearer = await refusal(() => auth().identify('Xbearer nonsense', () => '1.2.3.4', plain));
    expect(notBearer.message).toBe('unsupported Authorization header');
    expect(challengeOf(error)).toBe(
      'Bearer realm="http://registry.test:5000/token",service="wharf",error="invalid_token"',
    );
  });

  it('answers wrong passwords and unknown schemes with 401, and ignores credentials when there are no users', async () => {
    const client = auth();
    const wrong = await refusal(() => client.identify(basic('alice', 'wrong'), () => '10.0.0.1', plain));
    expect(wrong.code).toBe('UNAUTHORIZED');
    expect(wrong.message).toBe('wrong user name or password');
    expect(challengeOf(wrong)).toBe('Bearer realm="http://registry.test:5000/token",service="wharf"');
    const unsupported = await refusal(() => client.identify('Digest x', () => '10.0.0.2', plain));
    expect(unsupported.code).toBe('UNAUTHORIZED');
    expect(unsupported.message).toBe('unsupported Authorization header');
    const open = auth({ withUsers: false });
    expect(await open.identify(basic('alice', 'wrong'), () => '10.0.0.3', plain)).toEqual({ kind: 'anonymous' });
    expect(await open.identify('Digest x', () => '10.0.0.3', plain)).toEqual({ kind: 'anonymous' });
  });

  it('locks an address out after its failures, right password or not, and only that address', async () => {
    const client = auth();
    for (let i = 0; i < 2; i++) await refusal(() => client.identify(basic('alice', 'no'), () => '10.1.1.1', plain));
    const locked = await refusal(() => client.identify(basic('alice', 'right'), () => '10.1.1.1', plain));
    expect(locked.code).toBe('TOOMANYREQUESTS');
    expect(locked.message).toBe('too many failed sign-ins from this address; try again later');
    expect(Number(locked.headers?.['Retry-After'])).toBe(60);
    expect(await client.identify(basic('alice', 'right'), () => '10.1.1.2', plain)).toEqual({
      kind: 'basic',
      user: 'alice',
    });
    // A right password does not count as a failure.
    const fresh = auth();
    for (let i = 0; i < 5; i++) await fresh.identify(basic('alice', 'right'), () => '10.2.2.2', plain);
    await refusal(() => fresh.identify(basic('alice', 'no'), () => '10.2.2.2', plain));
    expect(await fresh.identify(basic('alice', 'right'), () => '10.2.2.2', plain)).toMatchObject({ kind: 'basic' });
  });

  it('keeps an address locked out to the last second of its window, then lets it sign in', async () => {
    let clock = 1_000_000;
    const client = new ClientAuth({
      users,
      policy: new AccessPolicy(defaultRules(true)),
      tokens: new TokenIssuer('wharf', 300),
      limiter: new LoginLimiter({ maxFailures: 2, windowMs: 60_000 }, () => clock),
    });
    for (let i = 0; i < 2; i++) await refusal(() => client.identify(basic('alice', 'no'), () => '10.3.3.3', plain));
    // Half a second of the window left: Retry-After rounds up to 1, and the lock-out still holds.
    clock += 59_500;
    const locked = await refusal(() => client.identify(basic('alice', 'right'), () => '10.3.3.3', plain));
    expect(locked.code).toBe('TOOMANYREQUESTS');
    expect(locked.headers?.['Retry-After']).toBe('1');
    clock += 500;
    expect(await client.identify(basic('alice', 'right'), () => '10.3.3.3', plain)).toEqual({
      kind: 'basic',
      user: 'alice',
    });
  });
});

describe('authorize', () => {
  const anonymous: Identity = { kind: 'anonymous' };
  const alice: Identity = { kind: 'basic', user: 'alice' };

  it('passes what the rights allow', () => {
    const client = auth();
    expect(() => client.authorize(alice, local, 'team/app', ['pull', 'push'], plain)).not.toThrow();
    expect(() => client.authorize(anonymous, local, 'team/app', ['pull'], plain)).not.toThrow();
    expect(() => client.authorize(alice, local, 'team/app', [], plain)).not.toThrow();
  });

  it('asks anonymous clients to sign in, naming the scope (a push scope carries pull)', async () => {
    const error = await refusal(() => auth().authorize(anonymous, local, 'team/app', ['push'], plain));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toBe('authentication required');
    expect(challengeOf(error)).toBe(
      'Bearer realm="http://registry.test:5000/token",service="wharf",scope="repository:team/app:pull,push"',
    );
    const del = await refusal(() => auth().authorize(anonymous, local, 'team/app', ['delete', 'pull'], plain));
    expect(challengeOf(del)).toContain('scope="repository:team/app:pull,delete"');
    const adm = await refusal(() => auth().authorize(anonymous, local, 'team/app', ['admin', 'push'], plain));
    expect(challengeOf(adm)).toContain('scope="repository:team/app:pull,push,admin"');
    // Only push brings pull along.
    const delOnly = await refusal(() => auth().authorize(anonymous, local, 'team/app', ['delete'], plain));
    expect(challengeOf(delOnly)).toContain('scope="repository:team/app:delete"');
  });

  it('refuses writes to mirrored names with 405 UNSUPPORTED, to anonymous clients of an open registry too', async () => {
    const error = await refusal(() => auth().authorize(alice, mirrored, 'alpine', ['pull', 'push'], plain));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.detail).toEqual({ name: 'alpine' });
    expect(error.message).toBe(
      'docker.io/library/alpine is mirrored from docker.io and read-only: push to a local name, or have an admin feed the mirror',
    );
    const open = await refusal(() =>
      auth({ withUsers: false }).authorize(anonymous, mirrored, 'alpine', ['delete'], plain),
    );
    expect(open.code).toBe('UNSUPPORTED');
    const unknown = await refusal(() =>
      auth().authorize(alice, { ...mirrored, upstream: undefined }, 'alpine', ['push'], plain),
    );
    expect(unknown.message).toContain('mirrored from an upstream and read-only');
    // With users, an anonymous writer is asked to sign in first (an admin might be coming).
    const signIn = await refusal(() => auth().authorize(anonymous, mirrored, 'alpine', ['push'], plain));
    expect(signIn.code).toBe('UNAUTHORIZED');
    // A missing pull on a mirrored name is not a write: no 405.
    const pull = await refusal(() => auth().authorize(anonymous, privateName, 'x', ['pull'], plain));
    expect(pull.code).toBe('UNAUTHORIZED');
    // Missing a read and a write on a mirrored name: the write decides, 405.
    const both = await refusal(() =>
      auth({ withUsers: false }).authorize(anonymous, privateName, 'x', ['pull', 'push'], plain),
    );
    expect(both.code).toBe('UNSUPPORTED');
  });

  it('answers a signed-in client without the right with 403 DENIED, saying when the content is private', async () => {
    const policy = new AccessPolicy([{ repositories: ['team/*'], users: ['*'], allow: ['pull'] }]);
    const error = await refusal(() => auth({ policy }).authorize(alice, local, 'team/app', ['pull', 'push'], plain));
    expect(error.code).toBe('DENIED');
    expect(error.message).toBe('requested access to the resource is denied');
    expect(error.detail).toEqual({ name: 'team/app', actions: ['push'] });
    const open = auth({ withUsers: false, policy });
    const hidden = await refusal(() => open.authorize(anonymous, privateName, 'x', ['pull'], plain));
    expect(hidden.code).toBe('DENIED');
    expect(hidden.message).toBe('requested access to the resource is denied (private upstream content)');
    const notPrivate = await refusal(() => open.authorize(anonymous, local, 'other/app', ['pull'], plain));
    expect(notPrivate.message).toBe('requested access to the resource is denied');
    // A signed-in user refused private content is not told it is private.
    const signedIn = await refusal(() =>
      auth({ policy: new AccessPolicy([]) }).authorize(alice, privateName, 'x', ['pull'], plain),
    );
    expect(signedIn.message).toBe('requested access to the resource is denied');
  });

  it('holds a token to its grant: insufficient_scope when it lacks an action the user has', async () => {
    const client = auth();
    const claims = { sub: 'alice', access: [{ type: 'repository' as const, name: 'team/app', actions: ['pull'] }] };
    const bearer: Identity = { kind: 'bearer', user: 'alice', claims };
    expect(() => client.authorize(bearer, local, 'team/app', ['pull'], plain)).not.toThrow();
    const narrow = await refusal(() => client.authorize(bearer, local, 'team/app', ['pull', 'push'], plain));
    expect(narrow.code).toBe('UNAUTHORIZED');
    expect(narrow.message).toBe('the token does not grant this access');
    expect(challengeOf(narrow)).toBe(
      'Bearer realm="http://registry.test:5000/token",service="wharf",scope="repository:team/app:pull,push",error="insufficient_scope"',
    );
    // The grant is per name as the client spelled it.
    await refusal(() => client.authorize(bearer, local, 'team/other', ['pull'], plain));
    const admin: Identity = {
      kind: 'bearer',
      user: 'alice',
      claims: { sub: 'alice', access: [{ type: 'repository', name: 'team/app', actions: ['admin'] }] },
    };
    expect(() => client.authorize(admin, local, 'team/app', ['pull', 'push', 'delete'], plain)).not.toThrow();
    // A token never widens the user's rights.
    const wide: Identity = {
      kind: 'bearer',
      user: 'alice',
      claims: { sub: 'alice', access: [{ type: 'repository', name: 'team/app', actions: ['push'] }] },
    };
    const policy = new AccessPolicy([{ repositories: ['**'], users: ['*'], allow: ['pull'] }]);
    const denied = await refusal(() => auth({ policy }).authorize(wide, local, 'team/app', ['push'], plain));
    expect(challengeOf(denied)).toContain('error="insufficient_scope"');
    expect(denied.message).toBe('the token does not grant this access');
  });

  it('requires sign-in at /v2/ only when users are configured', async () => {
    expect(() => auth({ withUsers: false }).requireSignInForBase({ kind: 'anonymous' }, plain)).not.toThrow();
    expect(() => auth().requireSignInForBase(alice, plain)).not.toThrow();
    const error = await refusal(() => auth().requireSignInForBase({ kind: 'anonymous' }, plain));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toBe('authentication required');
  });
});

describe('accessors', () => {
  it('hand out the policy and token issuer they were given', () => {
    const policy = new AccessPolicy([]);
    const client = auth({ policy });
    expect(client.policy).toBe(policy);
    expect(client.tokens.service).toBe('wharf');
    expect(client.enabled).toBe(true);
    expect(auth({ withUsers: false }).enabled).toBe(false);
  });
});

describe('the realm in challenges', () => {
  it('is the configured realm, else /token on the Host the request named, https when the connection was', () => {
    const configured = auth({ realm: 'https://auth.example.test/token' });
    expect(challengeOf(configured.challenge(plain, undefined, undefined, 'x'))).toBe(
      'Bearer realm="https://auth.example.test/token",service="wharf"',
    );
    const client = auth();
    expect(challengeOf(client.challenge({ host: '[::1]:5000', secure: true }, 's', 'e', 'x'))).toBe(
      'Bearer realm="https://[::1]:5000/token",service="wharf",scope="s",error="e"',
    );
    // A Host header that could inject into the header or point elsewhere is replaced.
    for (const host of [undefined, 'evil.test/x', 'a"b', 'host with space']) {
      expect(challengeOf(client.challenge({ host, secure: false }, undefined, undefined, 'x'))).toBe(
        'Bearer realm="http://localhost/token",service="wharf"',
      );
    }
    const error = client.challenge(plain, undefined, undefined, 'a message');
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toBe('a message');
  });
});
