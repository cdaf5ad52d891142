/**
 * Round 4 of the planted-bug audit: over TLS, the token realm wharf names in its challenges is
 * https. An http:// realm would send the client's password in clear to the same host and port (or
 * fail against a TLS-only port). Real parts: wharf in process with a self-signed certificate and
 * users, node's https client trusting that certificate only.
 */
import { get } from 'node:https';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/cli/start-server.js';
import { withDeadline } from './support/run.js';
import { writeTestCertificate } from './support/test-certificate.js';

let dir: string;
let server: RunningServer;
let ca: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-tls-challenge-'));
  const files = await writeTestCertificate(dir, 'tls');
  ca = await readFile(files.cert);
  server = await startServer({
    dataDir: join(dir, 'data'),
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    tls: files,
    auth: {
      users: new Map([['alice', bcrypt.hashSync('alice-pw', 4)]]),
      access: [{ repositories: ['**'], users: ['alice'], allow: ['pull', 'push'] }],
      tokenTtlMs: 60_000,
      realm: undefined,
    },
  });
});

afterAll(async () => {
  await server?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function challenge(url: string): Promise<{ status: number; header: string | undefined }> {
  return withDeadline(
    new Promise((resolve, reject) => {
      get(url, { ca, agent: false }, (res) => {
        res.resume();
        const header = res.headers['www-authenticate'];
        resolve({ status: res.statusCode ?? 0, header: Array.isArray(header) ? header.join(', ') : header });
      }).on('error', reject);
    }),
    20_000,
    `GET ${url}`,
  );
}

describe('challenges over TLS', () => {
  it('name an https token realm at /v2/ and on a repository', async () => {
    const host = `127.0.0.1:${server.port}`;
    expect(await challenge(`https://${host}/v2/`)).toEqual({
      status: 401,
      header: `Bearer realm="https://${host}/token",service="wharf"`,
    });
    expect(await challenge(`https://${host}/v2/team/app/tags/list`)).toEqual({
      status: 401,
      header: `Bearer realm="https://${host}/token",service="wharf",scope="repository:team/app:pull"`,
    });
  });
});
