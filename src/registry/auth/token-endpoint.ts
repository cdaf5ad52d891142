/**
 * @module registry/auth/token-endpoint
 * GET and POST /token: the docker token flow's authorization server
 * (distribution docs "Token Authentication Specification" and "OAuth2 Token
 * Authentication"). GET takes Basic credentials (or none, for an anonymous
 * token) and `scope=` parameters; POST takes an OAuth2 form with
 * grant_type=password, as containerd sends when it has a password. The grant is
 * what was asked for and allowed; an action not allowed is left out rather than
 * refused (the registry answers the request that needs it), as distribution does.
 */
import type { Context } from 'hono';
import { OciError } from '../../oci/errors.js';
import { parseRepoName } from '../../oci/reference.js';
import { actions, type Action } from './access-policy.js';
import { parseBasic, type ClientAuth } from './client-auth.js';
import type { NameResolver } from './name-resolver.js';
import type { GrantedAccess } from './tokens.js';

/** An OAuth2 form is a few short fields: anything larger is not one. */
const maxFormBytes = 16 * 1024;
/** A token request names a handful of scopes; this bounds the work and the token's size. */
const maxScopes = 32;

export interface TokenRequest {
  user: string | undefined;
  password: string | undefined;
  scopes: string[];
  address: string;
}

/** Scopes as sent: repeated `scope=` parameters, each possibly several space-separated scopes. */
export function splitScopes(values: readonly string[]): string[] {
  return values.flatMap((value) => value.split(' ')).filter((scope) => scope !== '');
}

export async function answerTokenRequest(
  auth: ClientAuth,
  names: NameResolver,
  request: TokenRequest,
): Promise<{ user: string | undefined; access: GrantedAccess[] }> {
  let user: string | undefined;
  if (request.user !== undefined && request.user !== '' && auth.enabled) {
    if (!(await auth.checkPassword(request.user, request.password ?? '', request.address))) {
      throw new OciError('UNAUTHORIZED', 'wrong user name or password');
    }
    user = request.user;
  }
  if (request.scopes.length > maxScopes) {
    throw new OciError('DENIED', `at most ${maxScopes} scopes per token request`, { status: 400 });
  }
  const access: GrantedAccess[] = [];
  for (const scope of request.scopes) {
    const granted = grant(auth, names, user, scope);
    if (granted !== undefined) access.push(granted);
  }
  return { user, access };
}

function grant(
  auth: ClientAuth,
  names: NameResolver,
  user: string | undefined,
  scope: string,
): GrantedAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: a guard; an empty type or name is refused below as well.
  if (first <= 0 || last === first) return undefined;
  const type = scope.slice(0, first);
  const rawName = scope.slice(first + 1, last);
  const asked = scope.slice(last + 1).split(',');
  // The catalog is filtered per client by pull rights (listing-handlers), so asking for it is harmless.
  if (type === 'registry' && rawName === 'catalog') return { type: 'registry', name: 'catalog', actions: ['*'] };
  if (type !== 'repository') return undefined;
  const name = parseRepoName(rawName);
  if (name === undefined) return undefined;
  const allowed = new Set<Action>();
  // Stryker disable next-line ConditionalExpression: a 'basic' identity without a user has anonymous rights all the same.
  const identity = user === undefined ? ({ kind: 'anonymous' } as const) : ({ kind: 'basic', user } as const);
  let classes;
  try {
    classes = names.classifyAll(name);
  } catch {
    return undefined;
  }
  for (const cls of classes) for (const action of auth.rights(identity, cls)) allowed.add(action);
  // `*` is what docker asks for on delete in some versions: every action this client has.
  const wanted = asked.includes('*') ? [...actions] : asked;
  const granted = wanted.filter((action): action is Action => allowed.has(action as Action));
  return { type: 'repository', name, actions: granted };
}

/** Hono handler for GET and POST /token. */
export function tokenHandler(auth: ClientAuth, names: NameResolver) {
  return async (c: Context): Promise<Response> => {
    const address = clientAddress(c);
    const oauth = c.req.method === 'POST';
    let request: TokenRequest;
    if (oauth) {
      const form = await readForm(c);
      const grantType = form.get('grant_type');
      if (grantType !== 'password') {
        return c.json({ error: 'unsupported_grant_type' }, 400);
      }
      request = {
        user: form.get('username') ?? undefined,
        password: form.get('password') ?? undefined,
        scopes: splitScopes(form.getAll('scope')),
        address,
      };
    } else {
      const basic = parseBasic(c.req.header('authorization'));
      request = {
        user: basic?.user,
        password: basic?.password,
        // Stryker disable next-line ArrayDeclaration: a scope without colons grants nothing.
        scopes: splitScopes(c.req.queries('scope') ?? []),
        address,
      };
    }
    const { user, access } = await answerTokenRequest(auth, names, request);
    const issued = await auth.tokens.issue({ sub: user ?? '', access });
    const scope = access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ');
    if (oauth) {
      return c.json({ access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt, scope });
    }
    return c.json({
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
    });
  };
}

async function readForm(c: Context): Promise<URLSearchParams> {
  // Stryker disable next-line StringLiteral: Number('') is 0 too.
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > maxFormBytes) throw new OciError('DENIED', 'token request form too large', { status: 413 });
  // Stryker disable next-line OptionalChaining: @hono/node-server always sets env.incoming.
  const incoming = (c.env as { incoming?: AsyncIterable<Buffer> } | undefined)?.incoming;
  const chunks: Buffer[] = [];
  let total = 0;
  // Stryker disable next-line ArrayDeclaration: @hono/node-server always sets env.incoming.
  for await (const chunk of incoming ?? []) {
    total += chunk.byteLength;
    if (total > maxFormBytes) throw new OciError('DENIED', 'token request form too large', { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks, total).toString('utf8'));
}

function clientAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  // Stryker disable next-line OptionalChaining,StringLiteral: @hono/node-server always sets env.incoming.socket.
  return env?.incoming?.socket?.remoteAddress ?? 'unknown';
}
