/**
 * HTTPS (issue 8: credentials must not cross the network in clear): with tls.cert/tls.key
 * wharf serves TLS; node and skopeo, trusting the self-signed certificate as their CA, push
 * and pull; without it skopeo refuses. SIGHUP re-reads the files: a new connection sees the
 * new certificate, and a pair that does not load is logged while the old one stays in use.
 */
import { X509Certificate } from 'node:crypto';
import { get } from 'node:https';
import { connect } from 'node:tls';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, testSeed, writeOciLayout } from './support/make-image.js';
import { writeTestCertificate } from './support/test-certificate.js';
import { run, RunError, withDeadline } from './support/run.js';
import { spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';

let dir: string;
let wharf: SpawnedWharf | undefined;
const certPath = (): string => join(dir, 'tls.crt');
const keyPath = (): string => join(dir, 'tls.key');

/** A self-signed P-256 certificate for 127.0.0.1, written to <dir>/<name>.crt and .key. */
async function makeCert(name: string): Promise<{ cert: string; key: string; pem: Buffer }> {
  const files = await writeTestCertificate(dir, name);
  return { ...files, pem: await readFile(files.cert) };
}

/** GET over HTTPS trusting `ca` only. */
function httpsStatus(url: string, ca: Buffer): Promise<number> {
  return withDeadline(
    new Promise<number>((resolve, reject) => {
      get(url, { ca, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    }),
    20_000,
    `GET ${url}`,
  );
}

/** The certificate a new TLS connection is served, trusting any (we only look at it). */
function servedFingerprint(host: string): Promise<string> {
  const [hostname, port] = host.split(':');
  return withDeadline(
    new Promise<string>((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
        const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
        socket.destroy();
        resolve(fingerprint);
      });
      socket.on('error', reject);
    }),
    20_000,
    `TLS handshake with ${host}`,
  );
}

const skopeo = (args: string[]): ReturnType<typeof run> => run('skopeo', args, { timeoutMs: 90_000 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-tls-'));
  const first = await makeCert('first');
  await copyFile(first.cert, certPath());
  await copyFile(first.key, keyPath());
  wharf = await spawnWharf(['--data', join(dir, 'data'), '--tls-cert', certPath(), '--tls-key', keyPath()], {
    // A short idle deadline: the guard must see TLS connections too (last test).
    env: { WHARF_LOG_LEVEL: 'info', WHARF_IDLE_TIMEOUT: '2s' },
  });
});

afterAll(async () => {
  if (wharf !== undefined) await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf exiting');
  await rm(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  it('serves HTTPS that node and skopeo verify against the certificate', async () => {
    if (wharf === undefined) throw new Error('no wharf');
    expect(wharf.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const pem = await readFile(certPath());
    expect(await httpsStatus(`${wharf.url}/v2/`, pem)).toBe(200);

    // containers-certs.d(5): *.crt files in the directory are CA certificates.
    const certs = join(dir, 'certs');
    await mkdir(certs);
    await copyFile(certPath(), join(certs, 'ca.crt'));
    const image = await makeImage({ seed: testSeed('tls'), layers: 2, layerSize: 16 * 1024 });
    const layout = join(dir, 'layout');
    await writeOciLayout(image, layout, 'v1');
    await skopeo([
      'copy',
      '--dest-cert-dir',
      certs,
      '--dest-tls-verify=true',
      `oci:${layout}:v1`,
      `docker://${wharf.host}/tls/app:v1`,
    ]);
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', certs, `docker://${wharf.host}/tls/app:v1`]);
    expect(raw.stdoutBuffer.equals(image.root.bytes)).toBe(true);
    const pulled = join(dir, 'pulled');
    await skopeo(['copy', '--src-cert-dir', certs, `docker://${wharf.host}/tls/app:v1`, `oci:${pulled}:v1`]);

    // Not trusting the certificate, skopeo refuses the connection: it is really verified.
    const untrusted = await skopeo(['inspect', '--raw', '--tls-verify=true', `docker://${wharf.host}/tls/app:v1`]).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(untrusted).toBeInstanceOf(RunError);
    expect((untrusted as RunError).stderr).toMatch(/certificate|x509/);
  });

  it('re-reads the files on SIGHUP, keeping the old pair when the new one does not load', async () => {
    if (wharf === undefined) throw new Error('no wharf');
    const before = new X509Certificate(await readFile(certPath())).fingerprint256;
    expect(await servedFingerprint(wharf.host)).toBe(before);

    const second = await makeCert('second');
    const after = new X509Certificate(second.pem).fingerprint256;
    await copyFile(second.cert, certPath());
    await copyFile(second.key, keyPath());
    wharf.child.kill('SIGHUP');
    await withDeadline(
      (async () => {
        while ((await servedFingerprint(wharf.host)) !== after) await new Promise((r) => setTimeout(r, 100));
      })(),
      20_000,
      'a new connection seeing the new certificate',
    );
    expect(await httpsStatus(`${wharf.url}/v2/`, second.pem)).toBe(200);

    // A key that does not belong to the certificate: logged, and the second pair stays in use.
    const third = await makeCert('third');
    await copyFile(third.key, keyPath());
    wharf.child.kill('SIGHUP');
    await withDeadline(
      (async () => {
        while (!wharf.output().includes('TLS reload failed')) await new Promise((r) => setTimeout(r, 100));
      })(),
      20_000,
      'the failed reload being logged',
    );
    expect(await servedFingerprint(wharf.host)).toBe(after);
    expect(await httpsStatus(`${wharf.url}/v2/`, second.pem)).toBe(200);
  });

  it('closes a TLS connection whose request body stalls, like a plain one', async () => {
    if (wharf === undefined) throw new Error('no wharf');
    const [hostname, port] = wharf.host.split(':');
    const closed = new Promise<void>((resolve) => {
      const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
        socket.write(`POST /v2/tls/slow/blobs/uploads/?digest=sha256:${'cd'.repeat(32)} HTTP/1.1\r\n`);
        socket.write(`Host: ${wharf?.host}\r\nContent-Length: 1000\r\n\r\nabc`);
      });
      socket.on('data', () => undefined);
      // A reset is as good a close as a FIN here.
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
    await withDeadline(closed, 20_000, 'the server closing a stalled TLS request');
  });
});
