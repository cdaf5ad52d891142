/**
 * @module registry/auth/client-auth
 * Who a request comes from, and whether it may do what it asks. Clients sign
 * in with Basic (checked against the user table) or with a bearer token from
 * this registry's /token endpoint (the docker token flow, which docker, podman,
 * skopeo and containerd all speak). The store knows nothing of users: this is
 * the only place that decides who sees and writes what.
 *
 * Answers, as the clients expect them:
 * - no or expired credentials where some are needed: 401 with a Bearer challenge
 *   naming the scope, so the client fetches a token and retries;
 * - a token whose grant lacks the action: 401 `insufficient_scope`;
 * - a signed-in client without the right: 403 DENIED;
 * - a write to a mirrored name: 405 UNSUPPORTED (read-only), unless admin;
 * - too many failed sign-ins from one address: 429 with Retry-After.
 */
import { OciError } from '../../oci/errors.js';
import type { AccessPolicy, Action, NameClass } from './access-policy.js';
import type { LoginLimiter } from './login-limiter.js';
import { tokenActions, type TokenClaims, type TokenIssuer } from './tokens.js';
import type { UserTable } from './user-table.js';

export type Identity =
  | { kind: 'anonymous' }
  | { kind: 'basic'; user: string }
  | { kind: 'bearer'; user: string | undefined; claims: TokenClaims };

export interface ClientAuthOptions {
  users: UserTable;
  policy: AccessPolicy;
  tokens: TokenIssuer;
  limiter: LoginLimiter;
  /** The token endpoint's URL as clients reach it; default: /token on the host the request named. */
  realm?: string;
}

export function userOf(identity: Identity): string | undefined {
  // Stryker disable next-line ConditionalExpression,StringLiteral: an anonymous identity has no user to return anyway.
  return identity.kind === 'anonymous' ? undefined : identity.user;
}

/** Basic credentials from an Authorization header, or undefined when it is not Basic. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  // Stryker disable next-line ConditionalExpression: the regex refuses undefined too (it tests "undefined"); the first test is for the type checker.
  if (header === undefined || !/^basic /i.test(header)) return undefined;
  // Stryker disable next-line MethodExpression: base64 decoding skips whitespace, so trim() changes nothing; it only reads clearly.
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export interface ChallengeContext {
  /** Host header of the request, for the default realm. */
  host: string | undefined;
  secure: boolean;
}

export class ClientAuth {
  constructor(private readonly options: ClientAuthOptions) {}

  /** Whether clients can sign in at all (users are configured). */
  get enabled(): boolean {
    return this.options.users.size > 0;
  }

  get policy(): AccessPolicy {
    return this.options.policy;
  }

  get tokens(): TokenIssuer {
    return this.options.tokens;
  }

  /**
   * The identity behind an Authorization header. Wrong credentials are an answer
   * (401), never a silent fall-back to anonymous: the client meant to sign in.
   */
  async identify(header: string | undefined, address: () => string, context: ChallengeContext): Promise<Identity> {
    if (header === undefined || header.trim() === '') return { kind: 'anonymous' };
    if (/^bearer /i.test(header)) {
      const claims = await this.options.tokens.check(header.slice(7).trim());
      if (claims === undefined) {
        throw this.challenge(context, undefined, 'invalid_token', 'the bearer token is invalid or expired');
      }
      return { kind: 'bearer', user: claims.sub === '' ? undefined : claims.sub, claims };
    }
    const basic = parseBasic(header);
    // Without users there is nobody to sign in as: credentials are ignored, as distribution does.
    if (!this.enabled) return { kind: 'anonymous' };
    if (basic === undefined) throw this.challenge(context, undefined, undefined, 'unsupported Authorization header');
    if (!(await this.checkPassword(basic.user, basic.password, address()))) {
      throw this.challenge(context, undefined, undefined, 'wrong user name or password');
    }
    return { kind: 'basic', user: basic.user };
  }

  /** Checks a password with the per-address limit on failures; throws 429 while an address is locked out. */
  async checkPassword(user: string, password: string, address: string): Promise<boolean> {
    const wait = this.options.limiter.retryAfter(address);
    if (wait > 0) {
      throw new OciError('TOOMANYREQUESTS', 'too many failed sign-ins from this address; try again later', {
        headers: { 'Retry-After': String(wait) },
      });
    }
    const ok = await this.options.users.verify(user, password);
    if (!ok) this.options.limiter.fail(address);
    return ok;
  }

  rights(identity: Identity, name: NameClass): ReadonlySet<Action> {
    return this.options.policy.rights(userOf(identity), name);
  }

  /** The base endpoint /v2/: with users configured, anonymous clients are asked to sign in (docker login relies on it). */
  requireSignInForBase(identity: Identity, context: ChallengeContext): void {
    if (this.enabled && identity.kind === 'anonymous') {
      throw this.challenge(context, undefined, undefined, 'authentication required');
    }
  }

  /** Throws the right refusal unless `identity` may take every action in `needed` on the name sent as `rawName`. */
  authorize(identity: Identity, name: NameClass, rawName: string, needed: Action[], context: ChallengeContext): void {
    const rights = this.rights(identity, name);
    // Stryker disable next-line ArrowFunction: the every() is a fast path; filter() gives the same empty list.
    const missing = needed.every((action) => rights.has(action)) ? [] : needed.filter((action) => !rights.has(action));
    // Built only for a refusal: this runs on every request, most of which pass.
    const scope = (): string => `repository:${rawName}:${scopeActions(needed)}`;
    if (missing.length > 0) {
      const writes = missing.some((action) => action === 'push' || action === 'delete');
      if (name.mirrored && writes && !(identity.kind === 'anonymous' && this.enabled)) {
        throw new OciError(
          'UNSUPPORTED',
          `${name.storeName} is mirrored from ${name.upstream ?? 'an upstream'} and read-only: push to a local name, or have an admin feed the mirror`,
          { detail: { name: rawName } },
        );
      }
      if (identity.kind === 'anonymous' && this.enabled) {
        throw this.challenge(context, scope(), undefined, 'authentication required');
      }
      if (identity.kind === 'bearer') {
        throw this.challenge(context, scope(), 'insufficient_scope', 'the token does not grant this access');
      }
      const why = name.private && identity.kind === 'anonymous' ? ' (private upstream content)' : '';
      throw new OciError('DENIED', `requested access to the resource is denied${why}`, {
        detail: { name: rawName, actions: missing },
      });
    }
    if (identity.kind === 'bearer') {
      const granted = tokenActions(identity.claims, rawName);
      if (needed.some((action) => !granted.has(action) && !granted.has('admin'))) {
        throw this.challenge(context, scope(), 'insufficient_scope', 'the token does not grant this access');
      }
    }
  }

  /** 401 with the Bearer challenge docker, containerd, podman and skopeo follow to /token. */
  challenge(
    context: ChallengeContext,
    scope: string | undefined,
    error: string | undefined,
    message: string,
  ): OciError {
    const params = [`realm="${this.realm(context)}"`, `service="${this.options.tokens.service}"`];
    if (scope !== undefined) params.push(`scope="${scope}"`);
    if (error !== undefined) params.push(`error="${error}"`);
    return new OciError('UNAUTHORIZED', message, {
      headers: { 'WWW-Authenticate': `Bearer ${params.join(',')}` },
    });
  }

  private realm(context: ChallengeContext): string {
    if (this.options.realm !== undefined) return this.options.realm;
    // The Host header goes back only to the client that sent it: a wrong one misleads nobody else.
    const host = context.host !== undefined && /^[A-Za-z0-9.:[\]-]+$/.test(context.host) ? context.host : 'localhost';
    return `${context.secure ? 'https' : 'http'}://${host}/token`;
  }
}

/** docker asks for "pull,push" when it pushes: a push scope always carries pull too. */
function scopeActions(needed: Action[]): string {
  const set = new Set<Action>(needed);
  if (set.has('push')) set.add('pull');
  return [...set].sort((a, b) => order(a) - order(b)).join(',');
}

function order(action: Action): number {
  // Stryker disable next-line StringLiteral: 'pull' sorts first at -1 as at 0.
  return ['pull', 'push', 'delete', 'admin'].indexOf(action);
}
