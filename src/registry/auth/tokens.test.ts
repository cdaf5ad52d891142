import { sign } from 'hono/jwt';
import { describe, expect, it } from 'vitest';
import { TokenIssuer, tokenActions, tokenIssuer } from './tokens.js';

const access = [{ type: 'repository' as const, name: 'team/app', actions: ['pull', 'push'] }];

// Near the real time: hono's verify checks exp and nbf against the real clock too.
const second = Math.floor(Date.now() / 1000);

function issuer(ttlSeconds = 60, service = 'wharf') {
  const clock = { now: second * 1000 + 500 };
  return { clock, tokens: new TokenIssuer(service, ttlSeconds, () => clock.now) };
}

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
}

describe('TokenIssuer', () => {
  it("issues a token its own check accepts at once, with distribution's claims", async () => {
    const { tokens } = issuer();
    const issued = await tokens.issue({ sub: 'alice', access });
    expect(issued.expiresIn).toBe(60);
    expect(issued.issuedAt).toBe(new Date(second * 1000).toISOString());
    expect(await tokens.check(issued.token)).toEqual({ sub: 'alice', access });
    const payload = payloadOf(issued.token);
    expect(payload).toMatchObject({ iss: 'wharf', aud: 'wharf', sub: 'alice', iat: second });
    expect(tokenIssuer).toBe('wharf');
    expect(payload['nbf']).toBe(second - 1);
    expect(payload['exp']).toBe(second + 61);
    expect(payload['jti']).toMatch(/^[0-9a-f]{24}$/);
    expect(payloadOf((await tokens.issue({ sub: 'alice', access })).token)['jti']).not.toBe(payload['jti']);
  });

  it('lives at least its lifetime and not a second more', async () => {
    const { clock, tokens } = issuer(60);
    const { token } = await tokens.issue({ sub: '', access });
    clock.now = (second + 60) * 1000 + 500;
    expect(await tokens.check(token)).toEqual({ sub: '', access });
    clock.now = (second + 60) * 1000 + 999;
    expect(await tokens.check(token)).toEqual({ sub: '', access });
    clock.now = (second + 61) * 1000;
    expect(await tokens.check(token)).toBeUndefined();
  });

  it('refuses tokens of another issuer, another service, another key, or none at all', async () => {
    const { tokens } = issuer();
    const other = issuer(60, 'other-service').tokens;
    expect(await tokens.check((await other.issue({ sub: 'alice', access })).token)).toBeUndefined();
    const sameService = issuer().tokens;
    expect(await tokens.check((await sameService.issue({ sub: 'alice', access })).token)).toBeUndefined();
    const forged = await sign(
      { iss: tokenIssuer, aud: 'wharf', sub: 'alice', exp: second + 3600, access },
      'not the key',
      'HS256',
    );
    expect(await tokens.check(forged)).toBeUndefined();
    expect(await tokens.check('not.a.token')).toBeUndefined();
    expect(await tokens.check('')).toBeUndefined();
  });
});

describe('tokenActions', () => {
  it('collects the actions granted on exactly that repository name', () => {
    const claims = {
      sub: 'alice',
      access: [
        { type: 'repository' as const, name: 'team/app', actions: ['pull'] },
        { type: 'repository' as const, name: 'team/app', actions: ['push'] },
        { type: 'repository' as const, name: 'team/app/x', actions: ['delete'] },
        { type: 'registry' as const, name: 'team/app', actions: ['admin'] },
        { type: 'repository' as const, name: 'team/app', actions: 'admin' as unknown as string[] },
      ],
    };
    expect([...tokenActions(claims, 'team/app')].sort()).toEqual(['pull', 'push']);
    expect([...tokenActions(claims, 'team/app/x')]).toEqual(['delete']);
    expect([...tokenActions(claims, 'team')]).toEqual([]);
  });
});
