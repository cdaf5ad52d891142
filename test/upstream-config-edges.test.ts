/**
 * Where wharf's upstream credentials and TLS settings come from, as an operator would notice them
 * (round 11a of hand-planted bugs): a certs.d folder that adds CAs to the system's (never instead),
 * a stray key refused, config.json credentials matched by exact host (never a neighbouring port),
 * a helper's identity token, --insecure kept, a serving pair whose key does not match refused, and
 * `dockerConfig: true` reaching the client serve builds.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { rootCertificates } from 'node:tls';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadTlsPair } from '../src/cli/tls-files.js';
import { createUpstreamRouter } from '../src/cli/upstream-router.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { readCertsDir } from '../src/upstream/certs-dir.js';
import { runCredentialHelper } from '../src/upstream/credential-helper.js';
import { lookupDockerCredentials } from '../src/upstream/docker-config.js';
import { resolveEndpoint } from '../src/upstream/registry-endpoint.js';
import { basicCredentials, sendBasicChallenge, sendManifest } from './support/scripted-registry.js';
import { writeTestCertificate } from './support/test-certificate.js';
import { upstreamHarness } from './support/upstream-harness.js';

const { serve, defer } = upstreamHarness();
const silent = { warn: () => undefined, info: () => undefined, debug: () => undefined, error: () => undefined };

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-upstream-config-'));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A docker-credential-<name> on a PATH of its own that prints `answer` and exits with `code`. */
async function helperOnPath(dir: string, name: string, answer: string, code = 0): Promise<Record<string, string>> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(dir, `${name}.out`), answer);
  const helper = join(bin, `docker-credential-${name}`);
  await writeFile(helper, `#!/bin/sh\ncat > /dev/null\ncat "${join(dir, `${name}.out`)}"\nexit ${code}\n`);
  await chmod(helper, 0o755);
  return { PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}`, DOCKER_CONFIG: dir };
}

describe('certs.d', () => {
  it("adds a folder's *.crt to the system's CAs, not instead of them", async () => {
    const root = await tempDir();
    await mkdir(join(root, 'registry.local:5000'));
    await writeFile(join(root, 'registry.local:5000', 'ca.crt'), 'PEM-OF-THE-FOLDER');
    const tls = await readCertsDir(root, 'registry.local:5000');
    expect(tls.ca).toEqual([...rootCertificates, 'PEM-OF-THE-FOLDER']);
    expect(await readCertsDir(root, 'other.local:5000')).toEqual({});
  });

  it('refuses a client key without its certificate, and a certificate without its key', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'a.local'));
    await writeFile(join(root, 'a.local', 'client.key'), 'KEY');
    await expect(readCertsDir(root, 'a.local')).rejects.toThrow(
      `${join(root, 'a.local', 'client.key')}: key without its client certificate`,
    );
    await mkdir(join(root, 'b.local'));
    await writeFile(join(root, 'b.local', 'client.cert'), 'CERT');
    await expect(readCertsDir(root, 'b.local')).rejects.toThrow(
      `${join(root, 'b.local', 'client.cert')}: client certificate without its key client.key`,
    );
  });

  it('keeps --insecure for a registry on loopback, with or without a certs.d folder', async () => {
    const root = await tempDir();
    expect(await resolveEndpoint('127.0.0.1:9', { certsDir: root, insecure: true })).toEqual({
      url: 'https://127.0.0.1:9',
      tls: { rejectUnauthorized: false },
    });
    await mkdir(join(root, '127.0.0.1:9'));
    await writeFile(join(root, '127.0.0.1:9', 'ca.crt'), 'PEM');
    const withFolder = await resolveEndpoint('127.0.0.1:9', { certsDir: root, insecure: true });
    expect(withFolder.tls.rejectUnauthorized).toBe(false);
    expect(withFolder.tls.ca?.at(-1)).toBe('PEM');
  });
});

describe('Docker config credentials', () => {
  it('matches an auths key by its exact host and port, never a neighbouring one', async () => {
    const dir = await tempDir();
    const auth = Buffer.from('u:p').toString('base64');
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { 'https://registry.local:50001/v2/': { auth }, 'https://ghcr.io/': { auth } } }),
    );
    const env = { DOCKER_CONFIG: dir };
    expect(await lookupDockerCredentials('registry.local:5000', env, silent)).toBeUndefined();
    expect(await lookupDockerCredentials('registry.local:50001', env, silent)).toEqual({
      kind: 'basic',
      username: 'u',
      password: 'p',
    });
    expect(await lookupDockerCredentials('ghcr.io', env, silent)).toEqual({
      kind: 'basic',
      username: 'u',
      password: 'p',
    });
  });

  it('takes a helper answer with the user <token> as an identity token', async () => {
    const dir = await tempDir();
    const env = await helperOnPath(dir, 'idt', JSON.stringify({ Username: '<token>', Secret: 'refresh-me' }));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { 'ghcr.io': 'idt' } }));
    expect(await lookupDockerCredentials('ghcr.io', env, silent)).toEqual({ kind: 'identity', token: 'refresh-me' });
  });

  it('tells a helper that failed from one that has nothing stored', async () => {
    const dir = await tempDir();
    const failing = await helperOnPath(dir, 'broken', 'keychain locked\n', 1);
    await expect(runCredentialHelper('broken', 'ghcr.io', failing)).rejects.toThrow(
      'docker-credential-broken get exited with 1',
    );
    const empty = await helperOnPath(dir, 'empty', 'credentials not found in native keychain\n', 1);
    expect(await runCredentialHelper('empty', 'ghcr.io', empty)).toBeUndefined();
  });
});

describe("serve's upstream clients", () => {
  it('use ~/.docker/config.json for an upstream with dockerConfig: true', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest }));
    const server = await serve({
      '/v2/team/app/manifests/v1': (req, res) =>
        basicCredentials(req) === 'u:p' ? sendManifest(res, manifest, mediaTypes.ociManifest) : sendBasicChallenge(res),
    });
    const dir = await tempDir();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { [server.host]: { auth: Buffer.from('u:p').toString('base64') } } }),
    );
    // The router hands its clients the process environment (cli/ is the layer that reads it).
    const saved = process.env['DOCKER_CONFIG'];
    process.env['DOCKER_CONFIG'] = dir;
    defer(async () => {
      if (saved === undefined) delete process.env['DOCKER_CONFIG'];
      else process.env['DOCKER_CONFIG'] = saved;
    });
    const { clients } = createUpstreamRouter(
      [
        {
          host: server.host,
          url: server.url,
          dockerConfig: true,
          public: false,
          tagTtlMs: 60_000,
          notFoundTtlMs: 30_000,
          prefetch: false,
        },
      ],
      undefined,
      [],
      pino({ level: 'silent' }),
    );
    const client = clients[0]?.client;
    if (client === undefined) throw new Error('no client');
    defer(() => client.close());
    const found = await client.getManifest('team/app', 'v1', [mediaTypes.ociManifest]);
    expect(found).toBeDefined();
  });

  it("hand the router each upstream's own TTLs, privacy and prefetch", () => {
    const base = { dockerConfig: false, public: false, prefetch: true, tagTtlMs: 60_000, notFoundTtlMs: 7_000 };
    const { router, clients } = createUpstreamRouter(
      [
        { ...base, host: 'open.test', url: 'http://127.0.0.1:9' },
        { ...base, host: 'closed.test', url: 'http://127.0.0.1:9', token: 't', prefetch: false, notFoundTtlMs: 0 },
      ],
      'open.test',
      [],
      pino({ level: 'silent' }),
    );
    for (const { client } of clients) defer(() => client.close());
    expect(
      router.upstreams.map(({ host, tagTtlMs, notFoundTtlMs, private: hidden, prefetch }) => ({
        host,
        tagTtlMs,
        notFoundTtlMs,
        hidden,
        prefetch,
      })),
    ).toEqual([
      { host: 'open.test', tagTtlMs: 60_000, notFoundTtlMs: 7_000, hidden: false, prefetch: true },
      { host: 'closed.test', tagTtlMs: 60_000, notFoundTtlMs: 0, hidden: true, prefetch: false },
    ]);
  });
});

describe('the serving certificate', () => {
  it('refuses a key that is not the certificate’s, naming both files', async () => {
    const dir = await tempDir();
    const a = await writeTestCertificate(dir, 'a');
    const b = await writeTestCertificate(dir, 'b');
    await expect(loadTlsPair({ cert: a.cert, key: b.key })).rejects.toThrow(`tls: ${a.cert} and ${b.key} do not load:`);
    const pair = await loadTlsPair(a);
    expect(pair.cert.equals(await readFile(a.cert))).toBe(true);
  });
});
