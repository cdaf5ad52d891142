/**
 * @module test/support/runnable-image
 * A single-platform linux/amd64 image that a container runtime can really start, built in code
 * from a file already on this machine: Debian's static busybox (package busybox) copied to
 * `/bin/sh` in one gzip'd layer. Invoked as `sh`, busybox runs its shell, so the image's Cmd
 * `/bin/sh -c 'echo …'` prints a line and exits 0. No network, no base image.
 */
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { sha256Digest, type Descriptor, type TestImage } from './make-image.js';

/** Statically linked, so the layer needs no libc: `file /usr/bin/busybox` says so on Debian. */
export const busyboxPath = '/usr/bin/busybox';

const fixed = { mtime: new Date(0), uid: 0, gid: 0, uname: 'root', gname: 'root' } as const;

async function layerTar(busybox: Buffer): Promise<Buffer> {
  const archive = pack();
  archive.entry({ name: 'bin/', type: 'directory', mode: 0o755, ...fixed });
  archive.entry({ name: 'bin/sh', type: 'file', mode: 0o755, size: busybox.length, ...fixed }, busybox);
  // A container's /tmp and /etc: runc mounts over /etc/hosts and friends, and wants the directories there.
  archive.entry({ name: 'etc/', type: 'directory', mode: 0o755, ...fixed });
  archive.entry({ name: 'tmp/', type: 'directory', mode: 0o1777, ...fixed });
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Docker media types (what Docker Hub serves); `message` is what the container prints. */
export async function makeRunnableImage(message: string): Promise<TestImage> {
  const tar = await layerTar(await readFile(busyboxPath));
  const gz = gzipSync(tar);
  const layer: Descriptor = {
    mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    digest: sha256Digest(gz),
    size: gz.length,
  };
  const diffId = sha256Digest(tar);
  const configBytes = Buffer.from(
    JSON.stringify({
      created: '1970-01-01T00:00:00Z',
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh', '-c', `echo ${message}`] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'busybox as /bin/sh' }],
    }),
  );
  const config: Descriptor = {
    mediaType: 'application/vnd.docker.container.image.v1+json',
    digest: sha256Digest(configBytes),
    size: configBytes.length,
  };
  const manifestType = 'application/vnd.docker.distribution.manifest.v2+json';
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config, layers: [layer] }));
  const manifest = { mediaType: manifestType, digest: sha256Digest(bytes), size: bytes.length, bytes };
  return {
    seed: `runnable ${message}`,
    mediaTypes: 'docker',
    blobs: new Map([
      [layer.digest, gz],
      [config.digest, configBytes],
    ]),
    images: [
      { platform: { os: 'linux', architecture: 'amd64' }, manifest, config, layers: [layer], diffIds: [diffId] },
    ],
    index: undefined,
    root: manifest,
  };
}
