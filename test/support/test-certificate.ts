/**
 * @module test/support/test-certificate
 * A throwaway self-signed certificate for 127.0.0.1 (openssl, P-256, one day), for loopback
 * servers that must speak https; clients trust it by its PEM (`ca`), never by turning checks off.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.js';

export interface TestCertificate {
  key: string;
  cert: string;
}

/** The PEM texts of a fresh certificate; `organization` tells two apart (O=…). */
export async function makeTestCertificate(organization = 'wharf-test'): Promise<TestCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-cert-'));
  try {
    const files = await writeTestCertificate(dir, 'tls', organization);
    return { key: await readFile(files.key, 'utf8'), cert: await readFile(files.cert, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes a fresh certificate to <dir>/<name>.crt and <dir>/<name>.key, for servers that read files. */
export async function writeTestCertificate(
  dir: string,
  name: string,
  organization = name,
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await run(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=127.0.0.1/O=${organization}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-days',
      '2',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { timeoutMs: 30_000 },
  );
  return { cert, key };
}
