/**
 * @module oci/errors
 * One error type for the whole program, and the one table that maps the
 * distribution spec's error codes to HTTP statuses (spec §Error Codes;
 * distribution's registry/api/errcode/register.go for the Docker-only codes).
 */

export const errorStatus = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  PAGINATION_NUMBER_INVALID: 400,
  RANGE_INVALID: 416,
  // Server-side only: a client mistake never produces these.
  UNKNOWN: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface OciErrorOptions {
  detail?: unknown;
  cause?: unknown;
  /** Overrides the table for the few places the spec names another status (413, 416). */
  status?: number;
  /** Extra response headers the spec asks for with this error (Range on a 416, Retry-After on a 429). */
  headers?: Record<string, string>;
}

export class OciError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: OciErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OciError';
    this.code = code;
    this.detail = options.detail;
    this.status = options.status ?? errorStatus[code];
    this.headers = options.headers ?? {};
  }

  /** The spec's error body: {"errors":[{"code","message","detail"}]}. */
  toBody(): { errors: { code: string; message: string; detail?: unknown }[] } {
    const entry: { code: string; message: string; detail?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

export function isOciError(value: unknown): value is OciError {
  return value instanceof OciError;
}

/** A full disk or quota (fs ENOSPC/EDQUOT, SQLite's SQLITE_FULL), as the error clients should see. */
export function isOutOfSpace(error: unknown): boolean {
  for (let e: unknown = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return true;
  }
  return false;
}

export function outOfSpace(cause: unknown): OciError {
  return new OciError('UNAVAILABLE', "no space left on the registry's storage; nothing was kept", {
    status: 507,
    cause,
  });
}
