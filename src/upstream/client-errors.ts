/**
 * @module upstream/client-errors
 * A registry's refusal as the wharf client commands report it. Unlike the mirror (which keeps an
 * upstream's words from its own clients, see response-errors.ts), here the user asked the registry
 * directly, so its own error code and message are what they need: `MANIFEST_UNKNOWN: manifest
 * unknown (127.0.0.1:5000: GET manifest team/app:v1, HTTP 404)`. The text is trimmed and stripped
 * of control characters: it is still a remote party's data printed on the user's terminal.
 */
import { errorStatus, OciError, type ErrorCode } from '../oci/errors.js';
import { readPrefix } from './read-body.js';
import { parseErrorBody } from './response-errors.js';
import { headerValue, type HttpResponse } from './upstream-http.js';

const errorBodyPrefixBytes = 8 * 1024;

function isErrorCode(value: string | undefined): value is ErrorCode {
  return value !== undefined && Object.hasOwn(errorStatus, value);
}

/** The code a status means when the body names none the spec knows. */
function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NAME_UNKNOWN';
  if (status === 405) return 'UNSUPPORTED';
  if (status === 416) return 'RANGE_INVALID';
  if (status === 429) return 'TOOMANYREQUESTS';
  return 'UNAVAILABLE';
}

/** Consumes (a prefix of) the body and returns the error to throw. */
export async function clientErrorFromResponse(response: HttpResponse, host: string, what: string): Promise<OciError> {
  const parsed = parseErrorBody(await readPrefix(response.body, errorBodyPrefixBytes));
  const first = Array.isArray(parsed) ? parsed[0] : undefined;
  const code = isErrorCode(first?.code) ? first.code : codeForStatus(response.status);
  const said = first?.message ?? (typeof parsed === 'string' ? parsed.slice(0, 200) : undefined);
  const where = `${host}: ${what}, HTTP ${response.status}`;
  const message = said === undefined || said === '' ? `(${where})` : `${clean(said)} (${where})`;
  const retryAfter = headerValue(response.headers, 'retry-after');
  return new OciError(code, message, {
    status: response.status,
    detail: { registry: host, status: response.status, errors: parsed },
    ...(retryAfter === undefined ? {} : { headers: { 'Retry-After': retryAfter } }),
  });
}

function clean(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 300);
}
