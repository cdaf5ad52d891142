/**
 * @module upstream/token-request
 * Asks a Bearer challenge's token service for a pull token (distribution docs/spec/auth/token.md):
 * GET realm?service=…&scope=… with Basic credentials when we have them, or, for an identity token,
 * the OAuth2 refresh-token grant by POST (auth/oauth.md). A failing service is an error naming the
 * realm, never a wait: the request runs under the same timeouts as any other. The realm comes from
 * the upstream's answer, so it is checked as a redirect from the registry would be (AddressGuard):
 * no https registry sends wharf, with its credentials, to a plain-http or non-public token service.
 */
import { OciError } from '../oci/errors.js';
import { basicAuthorization, type Credentials } from './credentials.js';
import type { Logger } from './logger.js';
import { readCapped } from './read-body.js';
import { errorFromResponse } from './response-errors.js';
import type { IssuedToken } from './token-cache.js';
import { contentLength, describeUrl, type HttpResponse, type UpstreamHttp } from './upstream-http.js';

/** A token answer is a JWT or two in JSON: a few KiB. */
const maxTokenResponseBytes = 1024 * 1024;

/** The client_id docker sends is "docker"; a token service uses it for logs only. */
const clientId = 'wharf';

export interface TokenChallenge {
  realm: string;
  service?: string;
}

function badGateway(realm: string, why: string, cause?: unknown): OciError {
  return new OciError('UNAVAILABLE', `token service ${realm}: ${why}`, {
    status: 502,
    ...(cause === undefined ? {} : { cause }),
  });
}

function parseRealm(realm: string): URL {
  const url = URL.canParse(realm) ? new URL(realm) : undefined;
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw badGateway(realm.slice(0, 200), 'the challenge names a realm that is not an http(s) URL');
  }
  return url;
}

async function send(
  http: UpstreamHttp,
  url: URL,
  realm: string,
  credentials: Credentials | undefined,
  scope: string,
  challenge: TokenChallenge,
  registry: URL,
): Promise<HttpResponse> {
  const base = { url, from: registry, trustedOrigin: url.origin, headers: { accept: 'application/json' } };
  try {
    if (credentials?.kind === 'identity') {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credentials.token,
        client_id: clientId,
      });
      if (challenge.service !== undefined) form.set('service', challenge.service);
      form.set('scope', scope);
      return await http.send({
        ...base,
        method: 'POST',
        headers: { ...base.headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    }
    if (challenge.service !== undefined) url.searchParams.set('service', challenge.service);
    // Several scopes (a push that mounts from another repository) go as repeated parameters (token.md).
    for (const one of scope.split(' ')) url.searchParams.append('scope', one);
    if (credentials?.kind !== 'basic') return await http.send({ ...base, method: 'GET' });
    url.searchParams.set('account', credentials.username);
    return await http.send({
      ...base,
      method: 'GET',
      authorization: basicAuthorization(credentials.username, credentials.password),
    });
  } catch (error) {
    // A 502 is a refusal already explained (a realm or a redirect wharf does not follow), not an outage.
    if (error instanceof OciError && error.status === 502) throw error;
    throw new OciError('UNAVAILABLE', `token service ${realm} unreachable`, { cause: error });
  }
}

/** Fetches a token for `scope` from the challenge of `upstream` (its host names it in DENIED messages). */
export async function requestToken(
  http: UpstreamHttp,
  challenge: TokenChallenge,
  scope: string,
  credentials: Credentials | undefined,
  upstream: { host: string; url: URL },
  logger: Logger,
): Promise<IssuedToken> {
  const url = parseRealm(challenge.realm);
  const realm = describeUrl(url);
  const response = await send(http, url, realm, credentials, scope, challenge, upstream.url);
  if (response.status !== 200) {
    const error = await errorFromResponse(response, upstream.host, `token for ${scope} from ${realm}`, logger);
    // Refused credentials and rate limits keep their meaning; anything else means the service is broken.
    if (error.code === 'DENIED' || error.code === 'TOOMANYREQUESTS') throw error;
    throw new OciError('UNAVAILABLE', `token service ${realm} answered ${response.status}`, { cause: error });
  }
  const bytes = await readCapped(response.body, maxTokenResponseBytes, contentLength(response.headers), realm, () =>
    badGateway(realm, `answer larger than ${maxTokenResponseBytes} bytes`),
  );
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (error) {
    throw badGateway(realm, 'answer is not JSON', error);
  }
  // token and access_token are equivalent (token.md); docker prefers access_token when both are set.
  const token = [parsed['access_token'], parsed['token']].find((t): t is string => typeof t === 'string' && t !== '');
  if (token === undefined) throw badGateway(realm, 'answer holds no token');
  const expiresIn = parsed['expires_in'];
  const lifetimeMs =
    typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : 0;
  return { token, lifetimeMs };
}
