/**
 * @module upstream/response-errors
 * The one place an upstream's unwanted answer becomes an OciError. 404 never gets here: absence is
 * a value (`undefined`) that the caller returns. Status choice, from the client's point of view:
 * the upstream said no (DENIED 403), asked us to slow down (TOOMANYREQUESTS 429 with its
 * Retry-After), is down (UNAVAILABLE 503), or answered something unusable (UNAVAILABLE with 502,
 * Bad Gateway, because the fault is upstream's, not the client's).
 * What the upstream wrote in its error body goes to the log, never to the client: it is the
 * upstream's text (it may hold internal names, tokens, or words aimed at the client), so the
 * client learns the upstream host, the operation and the status only.
 */
import { OciError } from '../oci/errors.js';
import type { Logger } from './logger.js';
import { readPrefix } from './read-body.js';
import { headerValue, type HttpResponse } from './upstream-http.js';

/** Enough of an error body to show the upstream's own error codes and message in the log. */
const errorBodyPrefixBytes = 8 * 1024;

interface UpstreamErrorEntry {
  code?: string;
  message?: string;
}

export function parseErrorBody(bytes: Buffer): UpstreamErrorEntry[] | string | undefined {
  if (bytes.byteLength === 0) return undefined;
  const text = bytes.toString('utf8');
  try {
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(parsed.errors)) {
      return parsed.errors.slice(0, 5).map((entry: unknown) => {
        const { code, message } = (entry ?? {}) as Record<string, unknown>;
        return {
          ...(typeof code === 'string' ? { code } : {}),
          ...(typeof message === 'string' ? { message: message.slice(0, 300) } : {}),
        };
      });
    }
  } catch {
    // not JSON: keep a printable preview instead
  }
  return text.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 300);
}

/**
 * Consumes the response body (a prefix of it), logs what it says and returns the error to throw.
 * `host` names the upstream in the message; `what` names the operation ("GET manifest library/alpine:3").
 */
export async function errorFromResponse(
  response: HttpResponse,
  host: string,
  what: string,
  logger: Logger,
): Promise<OciError> {
  const upstream = parseErrorBody(await readPrefix(response.body, errorBodyPrefixBytes));
  const status = response.status;
  // Debug: whoever acts on the error logs the failure once at its own level (the proxy warns about a
  // failed revalidation or fill); this line adds what the upstream said, which never reaches clients.
  logger.debug({ upstream: host, operation: what, status, response: upstream }, 'upstream error answer');
  const detail = { upstream: host, status };
  if (status === 429) {
    const retryAfter = headerValue(response.headers, 'retry-after');
    return new OciError('TOOMANYREQUESTS', `upstream ${host} is rate limiting: ${what}`, {
      detail,
      ...(retryAfter === undefined ? {} : { headers: { 'Retry-After': retryAfter } }),
    });
  }
  if (status === 401 || status === 403) {
    return new OciError('DENIED', `upstream ${host} denied access: ${what} (${status})`, { detail, status: 403 });
  }
  if (status >= 500) {
    return new OciError('UNAVAILABLE', `upstream ${host} failed: ${what} (${status})`, { detail });
  }
  return new OciError('UNAVAILABLE', `upstream ${host} answered ${status} to ${what}`, { detail, status: 502 });
}
