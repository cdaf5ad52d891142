/**
 * @module cli/tls-files
 * The certificate and key wharf serves HTTPS with: PEM files read at start and
 * again on SIGHUP (a renewed certificate needs no restart). A pair that does
 * not load (unreadable, not PEM, key not matching the certificate) is refused
 * here, before it replaces the one in use.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';

export interface TlsFiles {
  /** Path of the PEM certificate (chain), leaf first. */
  cert: string;
  /** Path of the PEM private key. */
  key: string;
}

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks the pair; throws one line naming the file and what is wrong. */
export async function loadTlsPair(files: TlsFiles): Promise<TlsPair> {
  const read = async (path: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new Error(`tls: cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  };
  const pair = { cert: await read(files.cert, 'certificate'), key: await read(files.key, 'key') };
  try {
    // OpenSSL checks that each parses and that the key belongs to the certificate.
    createSecureContext(pair);
  } catch (error) {
    throw new Error(`tls: ${files.cert} and ${files.key} do not load: ${(error as Error).message}`);
  }
  return pair;
}
