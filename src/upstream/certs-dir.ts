/**
 * @module upstream/certs-dir
 * The TLS settings docker reads for one registry from `/etc/docker/certs.d/<host[:port]>/`
 * (docker/daemon registry.ReadCertsDirectory): every `*.crt` is a CA to trust (added to the
 * system roots, not instead of them), a `*.cert` with the `*.key` of the same stem is a client
 * certificate. A certificate without its key (or the reverse) is an error, as in docker.
 */
import { readdir, readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import { OciError } from '../oci/errors.js';

export const defaultCertsDir = '/etc/docker/certs.d';

export interface RegistryTls {
  /** Trusted CAs: the system's plus the folder's; undefined when the folder adds none. */
  ca?: string[];
  cert?: string;
  key?: string;
  /** false with --insecure: TLS without checking the certificate. */
  rejectUnauthorized?: boolean;
}

/** The folder docker uses for a host: `[::1]:5000` has its own name, ports included. */
export function certsDirFor(root: string, host: string): string {
  return join(root, host);
}

/** The TLS options `root/<host>/` gives; {} when the folder does not exist. */
export async function readCertsDir(root: string, host: string): Promise<RegistryTls> {
  const dir = certsDirFor(root, host);
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') {
      return {};
    }
    throw error;
  }
  const tls: RegistryTls = {};
  const cas = await Promise.all(names.filter((n) => n.endsWith('.crt')).map((n) => readFile(join(dir, n), 'utf8')));
  if (cas.length > 0) tls.ca = [...rootCertificates, ...cas];
  for (const certName of names.filter((n) => n.endsWith('.cert'))) {
    const keyName = `${certName.slice(0, -'.cert'.length)}.key`;
    if (!names.includes(keyName)) {
      throw new OciError('UNKNOWN', `${join(dir, certName)}: client certificate without its key ${keyName}`);
    }
    tls.cert = await readFile(join(dir, certName), 'utf8');
    tls.key = await readFile(join(dir, keyName), 'utf8');
  }
  for (const keyName of names.filter((n) => n.endsWith('.key'))) {
    if (!names.includes(`${keyName.slice(0, -'.key'.length)}.cert`)) {
      throw new OciError('UNKNOWN', `${join(dir, keyName)}: key without its client certificate`);
    }
  }
  return tls;
}
