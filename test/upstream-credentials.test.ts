/**
 * Credentials the Docker client stored, used for upstreams with useDockerConfig: config.json auths
 * (Docker Hub under its legacy key), a credential helper run with the host on stdin, an identity
 * token exchanged at the token service, and the precedence of explicit config over all of them.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mediaTypes } from '../src/oci/media-types.js';
import { runCredentialHelper } from '../src/upstream/credential-helper.js';
import { UpstreamRegistry, type Logger } from '../src/upstream/upstream-registry.js';
import {
  basicCredentials,
  sendBasicChallenge,
  sendBearerChallenge,
  sendManifest,
  sendToken,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { upstreamHarness } from './support/upstream-harness.js';

const accept = [mediaTypes.ociManifest];
const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest }));
const manifestPath = '/v2/library/alpine/manifests/latest';

const { serve, connect, defer } = upstreamHarness();

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-upstream-credentials-'));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const basicOf = (header: string | undefined): string | undefined =>
  header === undefined ? undefined : Buffer.from(header.replace(/^Basic /, ''), 'base64').toString('utf8');

/** A registry behind Basic auth accepting only `expected` ('user:pass'). */
function basicRegistry(expected: string): Promise<ScriptedRegistry> {
  return serve({
    [manifestPath]: (req, res) =>
      basicCredentials(req) === expected
        ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
        : sendBasicChallenge(res),
  });
}

describe('Docker config credentials', () => {
  it("reads auths from $DOCKER_CONFIG/config.json, docker.io under Docker Hub's legacy key", async () => {
    const server = await basicRegistry('hub-user:hub-pass');
    const dir = await tempDir();
    const auth = Buffer.from('hub-user:hub-pass').toString('base64');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth } } }));
    const upstream = new UpstreamRegistry(
      { host: 'docker.io', url: server.url, useDockerConfig: true },
      { env: { DOCKER_CONFIG: dir } },
    );
    defer(() => upstream.close());
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
  });

  it('runs the credHelpers entry (docker-credential-<name> get, host on stdin) before inline auths', async () => {
    const server = await basicRegistry('helper-user:helper-pass');
    const dir = await tempDir();
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const helper = join(bin, 'docker-credential-test');
    await writeFile(
      helper,
      `#!/bin/sh\ncat >> "${join(dir, 'asked')}"\necho '{"ServerURL":"x","Username":"helper-user","Secret":"helper-pass"}'\n`,
    );
    await chmod(helper, 0o755);
    const inline = Buffer.from('inline-user:inline-pass').toString('base64');
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ credHelpers: { [server.host]: 'test' }, auths: { [server.host]: { auth: inline } } }),
    );
    const env = { DOCKER_CONFIG: dir, PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}` };
    const upstream = connect(server, { useDockerConfig: true }, { env });
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    // Asked once (lookups are cached per upstream), with the host on stdin.
    expect(await readFile(join(dir, 'asked'), 'utf8')).toBe(server.host);
    // The registry accepts only the helper's pair: one 401, then Basic with it, then Basic up front.
    expect(server.requestsTo(manifestPath).map((r) => basicOf(r.headers.authorization))).toEqual([
      undefined,
      'helper-user:helper-pass',
      'helper-user:helper-pass',
    ]);
  });

  it('uses configured credentials over the Docker config', async () => {
    const server = await basicRegistry('user:pass');
    const dir = await tempDir();
    const auth = Buffer.from('other:other').toString('base64');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [server.host]: { auth } } }));
    const upstream = connect(
      server,
      { username: 'user', password: 'pass', useDockerConfig: true },
      { env: { DOCKER_CONFIG: dir } },
    );
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
  });

  it('exchanges a stored identity token at the token service with the OAuth2 refresh-token grant', async () => {
    const server = await serve({
      '/token': (req, res, ctx) => {
        const form = new URLSearchParams(ctx.request.body.toString('utf8'));
        const ok =
          req.method === 'POST' &&
          form.get('grant_type') === 'refresh_token' &&
          form.get('refresh_token') === 'refresh-xyz';
        if (ok && form.get('scope') === 'repository:library/alpine:pull') sendToken(res, 'tok-oauth', 300);
        else sendBasicChallenge(res);
      },
      [manifestPath]: (req, res, ctx) =>
        req.headers.authorization === 'Bearer tok-oauth'
          ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
          : sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' }),
    });
    const dir = await tempDir();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { [server.host]: { identitytoken: 'refresh-xyz' } } }),
    );
    const upstream = connect(server, { useDockerConfig: true }, { env: { DOCKER_CONFIG: dir } });
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    expect(server.requestsTo('/token')[0]?.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('keeps the credentials it resolved until reloadCredentials, then asks for new tokens with new ones', async () => {
    // A token service that names the user in the token it issues: which credentials made a token shows in it.
    const server = await serve({
      '/token': (req, res) => {
        const user = basicOf(req.headers.authorization)?.split(':')[0];
        if (user === undefined) sendBasicChallenge(res);
        else sendToken(res, `tok-${user}`, 300);
      },
      [manifestPath]: (req, res, ctx) =>
        req.headers.authorization?.startsWith('Bearer tok-') === true
          ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
          : sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted', scope: 'x' }),
    });
    const dir = await tempDir();
    const store = (user: string): Promise<void> =>
      writeFile(
        join(dir, 'config.json'),
        JSON.stringify({ auths: { [server.host]: { auth: Buffer.from(`${user}:pw`).toString('base64') } } }),
      );
    await store('first');
    const upstream = connect(server, { useDockerConfig: true }, { env: { DOCKER_CONFIG: dir } });
    const tokenSent = (): (string | undefined)[] => server.requestsTo(manifestPath).map((r) => r.headers.authorization);

    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    await store('second');
    // Until told, the token and the credentials already resolved stay in use: the file is not read per request.
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    expect(tokenSent().at(-1)).toBe('Bearer tok-first');
    expect(server.requestsTo('/token')).toHaveLength(1);

    upstream.reloadCredentials({ useDockerConfig: true });
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    expect(tokenSent().at(-1)).toBe('Bearer tok-second');
    expect(server.requestsTo('/token').map((r) => basicOf(r.headers.authorization))).toEqual(['first:pw', 'second:pw']);
  });
});

// Round 5 of the planted-bug audit (docs/mutation-testing.md): a helper's answer is bounded (64 KiB).
describe('credential helper output', () => {
  it('refuses an answer over 64 KiB, however well formed', async () => {
    const dir = await tempDir();
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const answer = JSON.stringify({ Username: 'u', Secret: 's', Padding: 'x'.repeat(128 * 1024) });
    await writeFile(join(dir, 'answer.json'), answer);
    const helper = join(bin, 'docker-credential-big');
    await writeFile(helper, `#!/bin/sh\ncat > /dev/null\ncat "${join(dir, 'answer.json')}"\n`);
    await chmod(helper, 0o755);
    const env = { PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}` };
    await expect(runCredentialHelper('big', '127.0.0.1:5000', env)).rejects.toThrow(
      /^docker-credential-big (get exited with a signal|get printed something that is not JSON)$/,
    );
  });
});

// Round 7a of the planted-bug audit (docs/mutation-testing.md): a debug line that named the password
// or token along with the kind of credential passed every test (no test read the upstream's debug log).
describe('credentials in the log', () => {
  function recordingLogger(): { logger: Logger; text: () => string } {
    const records: unknown[] = [];
    const record = (level: string) => (obj: object, msg?: string) => void records.push({ level, obj, msg });
    return {
      logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
      text: () => JSON.stringify(records),
    };
  }

  it('names the kind of credential and the user at debug level, never the password', async () => {
    const server = await basicRegistry('log-user:log-password-7a');
    const { logger, text } = recordingLogger();
    const upstream = connect(server, { username: 'log-user', password: 'log-password-7a' }, { logger });
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    expect(text()).toContain('basic:log-user');
    expect(text()).not.toContain('log-password-7a');
    expect(text()).not.toContain(Buffer.from('log-user:log-password-7a').toString('base64'));
  });

  it('names a configured registry token as bearer, never the token', async () => {
    const server = await serve({
      [manifestPath]: (req, res) =>
        req.headers.authorization === 'Bearer log-token-7a'
          ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
          : sendBasicChallenge(res),
    });
    const { logger, text } = recordingLogger();
    const upstream = connect(server, { token: 'log-token-7a' }, { logger });
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    expect(text()).toContain('"credentials":"bearer"');
    expect(text()).not.toContain('log-token-7a');
  });
});
