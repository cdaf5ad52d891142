/**
 * @module registry/auth/tokens
 * The registry's own bearer tokens (the docker token flow): short-lived JWTs,
 * HS256-signed with a key that lives in this process only, carrying the
 * granted access in distribution's claim shape:
 * `access: [{ type: "repository", name, actions }]`. A restart invalidates every
 * token; clients then answer the next 401 by asking /token again, as they do
 * when a token expires.
 */
import { randomBytes } from 'node:crypto';
import { sign, verify } from 'hono/jwt';
import type { Action } from './access-policy.js';

export const tokenIssuer = 'wharf';

export interface GrantedAccess {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export interface TokenClaims {
  /** The signed-in user; '' for an anonymous token. */
  sub: string;
  access: GrantedAccess[];
}

export class TokenIssuer {
  private readonly key = randomBytes(32).toString('base64');

  constructor(
    readonly service: string,
    readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  async issue(claims: TokenClaims): Promise<{ token: string; expiresIn: number; issuedAt: string }> {
    const now = this.now();
    const issuedAt = Math.floor(now / 1000);
    // Rounded up, so a token never lives less than the configured lifetime.
    const expiresAt = Math.ceil(now / 1000 + this.ttlSeconds);
    const token = await sign(
      {
        iss: tokenIssuer,
        aud: this.service,
        sub: claims.sub,
        iat: issuedAt,
        nbf: issuedAt - 1,
        exp: expiresAt,
        jti: randomBytes(12).toString('hex'),
        access: claims.access,
      },
      this.key,
      'HS256',
    );
    return { token, expiresIn: this.ttlSeconds, issuedAt: new Date(issuedAt * 1000).toISOString() };
  }

  /** The claims of a token this process signed and that has not expired; undefined otherwise. */
  async check(token: string): Promise<TokenClaims | undefined> {
    try {
      const payload = await verify(token, this.key, { alg: 'HS256', iss: tokenIssuer, aud: this.service });
      // Stryker disable next-line ConditionalExpression: every token that passes verify() was signed here, with a numeric exp.
      if (typeof payload.exp !== 'number' || payload.exp * 1000 <= this.now()) return undefined;
      // Stryker disable next-line ConditionalExpression,StringLiteral: likewise always a string sub (defence in depth).
      const sub = typeof payload.sub === 'string' ? payload.sub : '';
      // Stryker disable next-line ArrayDeclaration: likewise always an access array (defence in depth).
      const access = Array.isArray(payload['access']) ? (payload['access'] as GrantedAccess[]) : [];
      return { sub, access };
    } catch {
      // Not signed here, expired, or malformed: no claims.
    }
    return undefined;
  }
}

/** The actions a token grants on one repository name. */
export function tokenActions(claims: TokenClaims, name: string): Set<Action> {
  const granted = new Set<Action>();
  for (const entry of claims.access) {
    if (entry.type !== 'repository' || entry.name !== name || !Array.isArray(entry.actions)) continue;
    for (const action of entry.actions) granted.add(action as Action);
  }
  return granted;
}
