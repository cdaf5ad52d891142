/**
 * @module upstream/credential-helper
 * Runs a Docker credential helper (`docker-credential-<name> get`, docker-credential-helpers
 * credentials/credentials.go): the server URL on stdin, `{"ServerURL","Username","Secret"}` on stdout.
 * Its output is a secret: it is parsed, never logged.
 */
import { spawn } from 'node:child_process';
import type { Environment } from './docker-config.js';

/** Helpers may unlock a keychain or call a cloud API (ecr-login); 10 s allows that and still bounds a
 * helper that waits for input nobody will give, so a request never hangs behind it. */
export const credentialHelperTimeoutMs = 10_000;

/** A helper's answer is a few hundred bytes; anything larger is not an answer. */
const maxOutputBytes = 64 * 1024;

export interface HelperCredentials {
  username: string;
  secret: string;
}

/** The helper's own "nothing stored" answer (credentials.NewErrCredentialsNotFound). */
const notFoundPattern = /credentials not found/i;

/** undefined when the helper has nothing for this server; throws when it cannot be run or misbehaves. */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  env: Environment | undefined,
): Promise<HelperCredentials | undefined> {
  // The name comes from a config file: refuse anything that could reach outside PATH lookup.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(helper)) throw new Error(`invalid credential helper name "${helper}"`);
  const program = `docker-credential-${helper}`;
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(program, ['get'], {
      stdio: ['pipe', 'pipe', 'ignore'],
      ...(env === undefined ? {} : { env: { ...env } }),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${program} did not answer within ${credentialHelperTimeoutMs} ms`));
    }, credentialHelperTimeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > maxOutputBytes) child.kill('SIGKILL');
      else chunks.push(chunk);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${program}: ${error.message}`));
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ code: exitCode, stdout: Buffer.concat(chunks).toString('utf8') });
    });
    // A helper that exits without reading stdin makes this write fail with EPIPE; its exit code tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverUrl);
  });
  if (code !== 0) {
    if (notFoundPattern.test(stdout)) return undefined;
    throw new Error(`${program} get exited with ${code ?? 'a signal'}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`${program} get printed something that is not JSON`);
  }
  const { Username, Secret } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof Secret !== 'string' || Secret === '') return undefined;
  return { username: typeof Username === 'string' ? Username : '', secret: Secret };
}
