/**
 * @module test/support/cut-or-timeout
 * Tells a cut connection (the server reset or closed it before the body was complete) from the
 * client's own timeout. A server that ends a failed response "cleanly" but short of its
 * Content-Length leaves the client waiting until its timeout fires: counting that as a cut let
 * a wrong `end()` pass (issue 13, survivor 3), so a timeout is a test failure, never a cut.
 */

/** undici's codes for a socket closed or reset by the other side. */
const cutCodes = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Returns 'cut' when `error` says the server cut the connection; throws (naming what happened)
 * for anything else, a client timeout first of all.
 */
export function cutOrThrow(error: unknown, what: string): 'cut' {
  const code = codeOf(error) ?? codeOf((error as { cause?: unknown } | null)?.cause);
  if (code !== undefined && cutCodes.has(code)) return 'cut';
  const message = error instanceof Error ? error.message : String(error);
  throw new Error(`${what}: not a cut by the server but ${code ?? 'an error'} (${message})`, { cause: error });
}
