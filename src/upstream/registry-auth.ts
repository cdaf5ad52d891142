/**
 * @module upstream/registry-auth
 * Decides the Authorization header of each registry request. The first request goes out without
 * one (no credential is offered before the registry asks); the 401 it earns names the scheme,
 * which is remembered so later requests authenticate up front instead of paying a 401 each:
 * Basic sends the credentials, Bearer fetches (or reuses) a pull token for the repository's scope.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { OciError } from '../oci/errors.js';
import { basicAuthorization, type Credentials } from './credentials.js';
import type { Logger } from './logger.js';
import { TokenCache } from './token-cache.js';
import { requestToken, type TokenChallenge } from './token-request.js';
import type { UpstreamHttp } from './upstream-http.js';
import { parseWwwAuthenticate, pickChallenge } from './www-authenticate.js';

type KnownChallenge = { scheme: 'basic' } | ({ scheme: 'bearer' } & TokenChallenge);

export class RegistryAuth {
  private challenge: KnownChallenge | undefined;

  private readonly host: string;
  private readonly registry: URL;

  /** `upstream.url` is the configured registry URL: the realm of its challenges is checked against it. */
  constructor(
    upstream: { host: string; url: URL },
    private readonly http: UpstreamHttp,
    private readonly credentials: () => Promise<Credentials | undefined>,
    private readonly tokens: TokenCache,
    private readonly logger: Logger,
  ) {
    this.host = upstream.host;
    this.registry = upstream.url;
  }

  /** The header for a first attempt at a request needing `scope`; undefined sends it anonymously. */
  async authorizationFor(scope: string): Promise<string | undefined> {
    const credentials = await this.credentials();
    // A configured registry token is what the registry expects: no challenge needed to send it.
    if (credentials?.kind === 'bearer') return `Bearer ${credentials.token}`;
    if (this.challenge === undefined) return undefined;
    return this.authorize(this.challenge, scope, credentials);
  }

  /**
   * After a 401 on a request that carried `sent`: learns the challenge and returns the header to
   * retry with, or throws DENIED when there is nothing new to try (no credentials for a Basic
   * challenge, the same credentials already refused, an unknown scheme).
   */
  async authorizationAfter401(headers: IncomingHttpHeaders, scope: string, sent: string | undefined): Promise<string> {
    const picked = pickChallenge(parseWwwAuthenticate(headers['www-authenticate']));
    const denied = (why: string): OciError =>
      new OciError('DENIED', `upstream ${this.host} requires authentication: ${why}`, {
        status: 403,
        detail: { upstream: this.host, scope },
      });
    if (picked === undefined) throw denied('401 without a Basic or Bearer challenge');
    const credentials = await this.credentials();
    if (credentials?.kind === 'bearer') throw denied('the configured token was refused');
    let challenge: KnownChallenge;
    if (picked.scheme === 'bearer') {
      const realm = picked.params['realm'];
      if (realm === undefined || realm === '') throw denied('Bearer challenge without a realm');
      const service = picked.params['service'];
      challenge = { scheme: 'bearer', realm, ...(service === undefined ? {} : { service }) };
    } else {
      challenge = { scheme: 'basic' };
    }
    if (this.challenge?.scheme !== challenge.scheme) {
      this.logger.debug({ upstream: this.host, scheme: challenge.scheme }, 'upstream auth challenge');
    }
    this.challenge = challenge;
    if (challenge.scheme === 'bearer' && sent?.startsWith('Bearer ') === true) {
      // The registry refused a token we thought valid (revoked, clock skew): fetch a fresh one once.
      this.tokens.invalidate(this.tokenKey(challenge, scope), sent.slice('Bearer '.length));
    }
    const next = await this.authorize(challenge, scope, credentials);
    if (next === undefined) throw denied(`a ${challenge.scheme} challenge and no usable credentials`);
    if (next === sent) throw denied('credentials refused');
    return next;
  }

  private tokenKey(challenge: TokenChallenge, scope: string): string {
    return TokenCache.key(challenge.realm, challenge.service, scope);
  }

  private async authorize(
    challenge: KnownChallenge,
    scope: string,
    credentials: Credentials | undefined,
  ): Promise<string | undefined> {
    if (challenge.scheme === 'basic') {
      return credentials?.kind === 'basic' ? basicAuthorization(credentials.username, credentials.password) : undefined;
    }
    const token = await this.tokens.get(this.tokenKey(challenge, scope), () =>
      requestToken(this.http, challenge, scope, credentials, { host: this.host, url: this.registry }, this.logger),
    );
    return `Bearer ${token}`;
  }
}
