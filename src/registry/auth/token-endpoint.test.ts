/** The grant logic of /token on real parts; the HTTP side is in test/client-auth.test.ts. */
import bcrypt from 'bcryptjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isOciError, OciError } from '../../oci/errors.js';
import { AccessPolicy, defaultRules, type NameClass } from './access-policy.js';
import { ClientAuth } from './client-auth.js';
import { LoginLimiter } from './login-limiter.js';
import { answerTokenRequest, splitScopes } from './token-endpoint.js';
import { TokenIssuer } from './tokens.js';
import { localNames, type NameResolver } from './name-resolver.js';
import { UserTable } from './user-table.js';

let users: UserTable;
beforeAll(async () => {
  users = new UserTable(new Map([['alice', await bcrypt.hash('right', 4)]]));
});

function auth(withUsers = true, policy?: AccessPolicy): ClientAuth {
  return new ClientAuth({
    users: withUsers ? users : new UserTable(new Map()),
    policy: policy ?? new AccessPolicy(defaultRules(withUsers)),
    tokens: new TokenIssuer('wharf', 300),
    limiter: new LoginLimiter(),
  });
}

/** `mirror/*` is mirrored from upstream.test; `?ns=` could make any name mirrored too. */
const names: NameResolver = {
  classify: (name) => classOf(name),
  classifyAll: (name) => {
    if (name === 'explodes/app') throw new OciError('NAME_INVALID', 'too long');
    const own = classOf(name);
    return own.mirrored ? [own] : [own, { mirrored: true, private: false, storeName: `upstream.test/${name}` }];
  },
};
function classOf(name: string): NameClass {
  return name.startsWith('mirror/')
    ? { mirrored: true, private: false, storeName: `upstream.test/${name}`, upstream: 'upstream.test' }
    : { mirrored: false, private: false, storeName: name };
}

const ask = (scopes: string[], user?: string, password?: string) => ({ user, password, scopes, address: '10.0.0.1' });

describe('splitScopes', () => {
  it('splits repeated and space-separated scopes and drops empty ones', () => {
    expect(splitScopes(['repository:a:pull repository:b:push', '', 'registry:catalog:*  '])).toEqual([
      'repository:a:pull',
      'repository:b:push',
      'registry:catalog:*',
    ]);
    expect(splitScopes([])).toEqual([]);
  });
});

describe('answerTokenRequest', () => {
  it('grants a signed-in user what was asked and allowed, leaving out the rest', async () => {
    const answer = await answerTokenRequest(
      auth(),
      names,
      ask(['repository:team/app:pull,push,delete', 'repository:mirror/app:pull,push'], 'alice', 'right'),
    );
    expect(answer).toEqual({
      user: 'alice',
      access: [
        { type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] },
        { type: 'repository', name: 'mirror/app', actions: ['pull'] },
      ],
    });
  });

  it('gives anonymous clients an anonymous grant, and every action they have for *', async () => {
    expect(await answerTokenRequest(auth(), names, ask(['repository:team/app:pull,push']))).toEqual({
      user: undefined,
      access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }],
    });
    expect(await answerTokenRequest(auth(), names, ask(['repository:team/app:pull'], ''))).toMatchObject({
      user: undefined,
    });
    const open = await answerTokenRequest(auth(false), names, ask(['repository:team/app:*'], 'alice', 'whatever'));
    // No users: credentials are ignored, anonymous rights apply.
    expect(open).toEqual({
      user: undefined,
      access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }],
    });
  });

  it('unions the rights of every class a name can take (a client may add ?ns= later)', async () => {
    const policy = new AccessPolicy([{ repositories: ['upstream.test/**'], users: ['*'], allow: ['pull'] }]);
    const answer = await answerTokenRequest(
      auth(true, policy),
      names,
      ask(['repository:team/app:pull'], 'alice', 'right'),
    );
    expect(answer.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    expect(
      await answerTokenRequest(auth(true, policy), localNames, ask(['repository:team/app:pull'], 'alice', 'right')),
    ).toEqual({ user: 'alice', access: [{ type: 'repository', name: 'team/app', actions: [] }] });
  });

  it('takes a user name without a password as an empty password', async () => {
    const withEmpty = new UserTable(new Map([['ci', await bcrypt.hash('', 4)]]));
    const client = new ClientAuth({
      users: withEmpty,
      policy: new AccessPolicy(defaultRules(true)),
      tokens: new TokenIssuer('wharf', 300),
      limiter: new LoginLimiter(),
    });
    expect((await answerTokenRequest(client, names, ask([], 'ci'))).user).toBe('ci');
  });

  it('refuses a wrong password with 401, and more than 32 scopes with 400', async () => {
    const wrong = await answerTokenRequest(auth(), names, ask([], 'alice', 'wrong')).catch((e: unknown) => e);
    expect(isOciError(wrong) && [wrong.code, wrong.message]).toEqual(['UNAUTHORIZED', 'wrong user name or password']);
    const noPassword = await answerTokenRequest(auth(), names, ask([], 'alice')).catch((e: unknown) => e);
    expect(isOciError(noPassword) && noPassword.code).toBe('UNAUTHORIZED');
    const scopes = Array.from({ length: 33 }, (_, i) => `repository:r${i}:pull`);
    const many = await answerTokenRequest(auth(), names, ask(scopes)).catch((e: unknown) => e);
    expect(isOciError(many) && [many.code, many.status, many.message]).toEqual([
      'DENIED',
      400,
      'at most 32 scopes per token request',
    ]);
    expect((await answerTokenRequest(auth(), names, ask(scopes.slice(0, 32)))).access).toHaveLength(32);
  });

  it('grants the catalog scope as asked and skips malformed, unknown or unclassifiable scopes', async () => {
    const answer = await answerTokenRequest(
      auth(),
      names,
      ask([
        'registry:catalog:*',
        'registry:other:*',
        'repository:team/app',
        ':team/app:pull',
        'repository:Bad Name:pull',
        'repository:explodes/app:pull',
        'plugin:team/app:pull',
        'repository:team/app:pull',
        'repository:catalog:pull',
      ]),
    );
    expect(answer.access).toEqual([
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'team/app', actions: ['pull'] },
      { type: 'repository', name: 'catalog', actions: ['pull'] },
    ]);
    // An invalid name is refused before any resolver sees it (localNames would classify anything).
    expect((await answerTokenRequest(auth(false), localNames, ask(['repository:Bad Name:pull']))).access).toEqual([]);
  });
});
