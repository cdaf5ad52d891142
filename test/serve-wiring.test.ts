/**
 * Round 13c of the planted-bug audit (docs/mutation-testing.md): what `wharf serve` makes of its
 * config file and flags, end to end in a spawned process. Each setting below has its own test of
 * loadConfig; these check that main.ts and start-server.ts hand it on to the server that runs:
 * log.access, registry.sparseManifests, store.verifyReads, limits.idleTimeout (not the header
 * timeout) and `--local`. And `wharf verify --repair --quick` checks sizes only, as `--quick` says.
 */
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobPath } from './support/blob-file.js';
import { sha256 } from './support/http.js';
import { seedStore } from './support/seeded-store.js';
import { withDeadline } from './support/run.js';
import { runWharf, spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-serve-wiring-'));
});
afterAll(async () => rm(work, { recursive: true, force: true }));

/** Puts the same bytes with one flipped under the blob's path as a new file (what a bad disk or a stray write leaves). */
async function corrupt(path: string): Promise<Buffer> {
  const bytes = await readFile(path);
  bytes[0] = (bytes[0] ?? 0) ^ 0xff;
  await writeFile(`${path}.new`, bytes);
  await rename(`${path}.new`, path);
  return bytes;
}

describe('wharf serve with a config file and flags', () => {
  let served: SpawnedWharf | undefined;
  let data: string;

  beforeAll(async () => {
    data = join(work, 'serve');
    const config = join(work, 'wharf.yaml');
    await writeFile(
      config,
      [
        'log:',
        '  access: false',
        'registry:',
        '  sparseManifests: true',
        'store:',
        '  verifyReads: false',
        'limits:',
        '  headerTimeout: 120s',
        '  idleTimeout: 1s',
        '',
      ].join('\n'),
    );
    served = await spawnWharf(
      [
        '-c',
        config,
        '--data',
        data,
        '--log-level',
        'info',
        // Nothing is fetched here: a closed loopback port stands for docker.io.
        '--upstream',
        'docker.io=http://127.0.0.1:9',
        '--default-upstream',
        'docker.io',
        '--local',
        'team/*',
      ],
      { timeoutMs: 60_000 },
    );
  }, 90_000);

  afterAll(async () => {
    if (served !== undefined) await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
  });

  async function pushBlob(bytes: string): Promise<string> {
    const digest = sha256(bytes);
    const response = await fetch(`${served?.url}/v2/team/app/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    });
    expect(response.status).toBe(201);
    return digest;
  }

  it('keeps --local names local beside --default-upstream, takes a sparse manifest, serves unchecked bytes, logs no requests', async () => {
    const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux' });
    const config = await pushBlob(configBytes);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configBytes.length },
      // A layer this repository does not hold: registry.sparseManifests takes it.
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('never pushed'), size: 12 }],
    });
    const put = await fetch(`${served?.url}/v2/team/app/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    expect(put.status).toBe(201);

    // store.verifyReads false: bytes that no longer match their digest are served as they are.
    const layer = await pushBlob('a layer that a bad disk will change');
    const changed = await corrupt(blobPath(data, layer));
    const read = await fetch(`${served?.url}/v2/team/app/blobs/${layer}`);
    expect(read.status).toBe(200);
    expect(Buffer.from(await read.arrayBuffer())).toEqual(changed);

    // log.access false: at --log-level info, no line per request (the banner is there).
    const output = served?.output() ?? '';
    expect(output).toContain('listening on');
    expect(output).not.toContain('"msg":"request"');
  });

  it('closes a request whose body stopped coming after limits.idleTimeout, not the header timeout', async () => {
    const [host = '', port = ''] = (served?.host ?? '').split(':');
    const socket = connect(Number(port), host);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(
      `POST /v2/team/app/blobs/uploads/?digest=sha256:${'ab'.repeat(32)} HTTP/1.1\r\n` +
        `Host: ${served?.host}\r\nContent-Length: 1048576\r\n\r\n${'x'.repeat(100)}`,
    );
    try {
      await withDeadline(closed, 30_000, 'the stalled request closed by the idle timeout');
    } finally {
      socket.destroy();
    }
  }, 60_000);
});

describe('wharf verify --repair --quick', () => {
  it('checks sizes only: a changed byte is not seen, nothing is quarantined, exit 0', async () => {
    const data = join(work, 'repair');
    const seeded = await seedStore(data);
    const path = blobPath(data, seeded.layer);
    const changed = await corrupt(path);
    const result = await runWharf(['verify', '--repair', '--quick', '--data', data], { timeoutMs: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('sizes checked (quick: no hashing)');
    expect(await readFile(path)).toEqual(changed);
  }, 90_000);
});
