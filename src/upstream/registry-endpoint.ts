/**
 * @module upstream/registry-endpoint
 * Where a registry the user named answers, and with which TLS settings. https by default, with
 * the CAs and client certificate of `<certs.d>/<host>/` (docker's layout), or none of it under
 * --plain-http. Docker Hub answers at registry-1.docker.io. A registry on loopback with no
 * certs.d folder is probed once (a TLS handshake, certificate unchecked, nothing sent): https when
 * it speaks TLS, else http, as docker treats 127.0.0.0/8 as an insecure registry and crane
 * speaks http to localhost. Everywhere else, plain http is only ever the user's explicit choice.
 */
import { connect } from 'node:tls';
import { classifyHost } from './address-class.js';
import { readCertsDir, type RegistryTls } from './certs-dir.js';

export interface EndpointOptions {
  plainHttp?: boolean;
  /** TLS without checking the certificate (--insecure). */
  insecure?: boolean;
  /** docker's /etc/docker/certs.d, or the folder the user chose. */
  certsDir: string;
}

export interface RegistryEndpoint {
  url: string;
  tls: RegistryTls;
}

/** The registry API of docker.io (its web name serves no /v2/). */
const dockerHubUrl = 'https://registry-1.docker.io';
/** A handshake on loopback takes milliseconds; a server that says nothing is not speaking TLS. */
const probeTimeoutMs = 3_000;

export async function resolveEndpoint(host: string, options: EndpointOptions): Promise<RegistryEndpoint> {
  if (options.plainHttp === true) return { url: `http://${host}`, tls: {} };
  if (host === 'docker.io')
    return { url: dockerHubUrl, tls: options.insecure === true ? { rejectUnauthorized: false } : {} };
  const tls = await readCertsDir(options.certsDir, host);
  if (options.insecure === true) tls.rejectUnauthorized = false;
  const hasFolderSettings = tls.ca !== undefined || tls.cert !== undefined;
  const url = new URL(`https://${host}`);
  if (!hasFolderSettings && options.insecure !== true && classifyHost(url.hostname) === 'loopback') {
    const port = url.port === '' ? 443 : Number(url.port);
    if (!(await speaksTls(url.hostname.replace(/^\[|\]$/g, ''), port))) return { url: `http://${host}`, tls: {} };
  }
  return { url: `https://${host}`, tls };
}

/** Whether a TLS handshake with host:port completes (the certificate is checked later, by the real requests). */
function speaksTls(hostname: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port, rejectUnauthorized: false, servername: undefined });
    const done = (result: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), probeTimeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}
