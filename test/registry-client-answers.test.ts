/**
 * @module test/registry-client-answers.test
 * What the client commands make of a registry's answers, in-process against the scripted loopback
 * registry: a refusal keeps the status's meaning when the body names no code (403 is DENIED, not
 * UNAUTHORIZED: the user has credentials, they lack the right), passes Retry-After on, and never
 * prints a remote party's control characters on the user's terminal (upstream/client-errors.ts);
 * `wharf tree`'s probe reports the registry's Cache-Status as sent (upstream/cache-status-probe.ts);
 * an upstream blob is read once, the second open refused (upstream/blob-once.ts). Round 11d of the
 * hand-planted bugs (docs/mutation-testing.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { OciError } from '../src/oci/errors.js';
import { blobReadOnce } from '../src/upstream/blob-once.js';
import { probeCacheStatus } from '../src/upstream/cache-status-probe.js';
import { pullScope, RegistryClient } from '../src/upstream/registry-client.js';
import { sendError, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';

const digest = `sha256:${'a'.repeat(64)}` as Digest;

let upstream: ScriptedRegistry;
let client: RegistryClient;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-client-answers-'));
  upstream = await startScriptedRegistry({
    '/v2/team/denied/manifests/v1': (_req, res) => {
      res.writeHead(403).end();
    },
    '/v2/team/busy/manifests/v1': (_req, res) => {
      sendError(res, 429, 'TOOMANYREQUESTS', 'slow down', { 'Retry-After': '7' });
    },
    '/v2/team/loud/manifests/v1': (_req, res) => {
      sendError(res, 404, 'MANIFEST_UNKNOWN', 'no such\x1b[2J\x1b[31m manifest\r\nforged line');
    },
    [`/v2/team/app/blobs/${digest}`]: (_req, res) => {
      res.writeHead(200, { 'Cache-Status': 'wharf; hit' }).end();
    },
    [`/v2/team/app/manifests/${digest}`]: (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }).end();
    },
  });
  client = new RegistryClient({
    host: upstream.host,
    url: upstream.url,
    env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
  });
});

afterAll(async () => {
  await client?.close();
  await upstream?.close();
  await rm(work, { recursive: true, force: true });
});

/** The error a GET of team/<repo>:v1 that must answer 200 throws. */
async function refusal(repo: string): Promise<OciError> {
  const error: unknown = await client
    .expect({ method: 'GET', target: `/v2/team/${repo}/manifests/v1`, scope: pullScope(`team/${repo}`) }, [200], 'GET')
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(OciError);
  return error as OciError;
}

describe('a registry refusal as the client commands report it', () => {
  it('a bare 403 is DENIED with status 403', async () => {
    const error = await refusal('denied');
    expect(error.code).toBe('DENIED');
    expect(error.status).toBe(403);
  });

  it("a 429 keeps the registry's Retry-After", async () => {
    const error = await refusal('busy');
    expect(error.code).toBe('TOOMANYREQUESTS');
    expect(error.headers).toEqual({ 'Retry-After': '7' });
  });

  it("strips the registry's control characters from its message", async () => {
    const error = await refusal('loud');
    expect(error.code).toBe('MANIFEST_UNKNOWN');
    expect(error.message).toBe(`no such [2J [31m manifest forged line (${upstream.host}: GET, HTTP 404)`);
    expect(error.message).not.toMatch(/[\x00-\x1f\x7f]/);
  });
});

describe('the Cache-Status probe', () => {
  it('reports the header as sent, and none when the registry sends none', async () => {
    expect(await probeCacheStatus(client, 'team/app', 'blobs', digest)).toEqual({
      found: true,
      cacheStatus: 'wharf; hit',
    });
    expect(await probeCacheStatus(client, 'team/app', 'manifests', digest)).toEqual({ found: true });
    expect(await probeCacheStatus(client, 'team/none', 'blobs', digest)).toEqual({ found: false });
  });
});

describe('an upstream blob read once', () => {
  it('opens its body once and refuses a second open', async () => {
    const body = (async function* () {
      yield Buffer.from('ab');
    })();
    const handle = await blobReadOnce('upstream x', digest, { size: 2, body, cancel: () => Promise.resolve() });
    expect(handle.size).toBe(2);
    expect(handle.open()).toBe(body);
    expect(() => handle.open()).toThrow(`blob ${digest} was already read`);
  });

  it('refuses an answer without a length, and releases it', async () => {
    let cancelled = 0;
    const answer = {
      size: undefined,
      body: (async function* () {})(),
      cancel: () => Promise.resolve(void cancelled++),
    };
    await expect(blobReadOnce('upstream x', digest, answer)).rejects.toMatchObject({
      code: 'SIZE_INVALID',
      message: `upstream x sent blob ${digest} without a length`,
    });
    expect(cancelled).toBe(1);
  });
});
