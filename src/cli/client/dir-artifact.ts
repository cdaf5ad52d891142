/**
 * @module cli/client/dir-artifact
 * A folder as an OCI artifact (image-spec manifest.md, artifacts guidance), reproducibly: the
 * same folder gives the same digest on any machine and any run. Entries are sorted by path;
 * nothing carries a time, an owner or a host name. Two forms:
 * - one layer per regular file (`application/vnd.oci.image.layer.v1.tar` media type as oras
 *   uses, the path in `org.opencontainers.image.title`, the permission bits in `io.wharf.file.mode`);
 * - `--tar`: one gzip'd tar of the whole tree (files, folders, symlinks; mtime 0, uid/gid 0, no
 *   user names; gzip header without time or name), marked `io.wharf.dir.tar: "true"`.
 * The config is the empty descriptor (`{}`), the artifactType says what the folder is.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import type { Descriptor } from '../../oci/descriptor.js';
import { createDigester, formatDigest, type Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { mediaTypes } from '../../oci/media-types.js';

export const defaultArtifactType = 'application/vnd.wharf.dir.v1';
export const fileLayerType = 'application/vnd.oci.image.layer.v1.tar';
export const tarLayerType = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const titleAnnotation = 'org.opencontainers.image.title';
export const modeAnnotation = 'io.wharf.file.mode';
export const tarAnnotation = 'io.wharf.dir.tar';

/** The empty config (image-spec manifest.md, guidance for an empty descriptor). */
export const emptyConfig = Buffer.from('{}');
export const emptyDescriptor: Descriptor = {
  mediaType: mediaTypes.ociEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' as Digest,
  size: 2,
};

export interface DirEntry {
  /** '/'-separated, relative to the folder. */
  path: string;
  absolute: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  size: number;
  linkTarget?: string;
}

/** Every entry under root, sorted by path (byte order); anything but files, folders and symlinks is refused. */
export async function listDir(root: string, prefix = ''): Promise<DirEntry[]> {
  const names = (await readdir(join(root, prefix))).sort();
  const entries: DirEntry[] = [];
  for (const name of names) {
    const path = prefix === '' ? name : posix.join(prefix, name);
    const absolute = join(root, path);
    const info = await lstat(absolute);
    const mode = info.mode & 0o777;
    if (info.isDirectory()) {
      entries.push({ path, absolute, type: 'directory', mode, size: 0 });
      entries.push(...(await listDir(root, path)));
    } else if (info.isFile()) entries.push({ path, absolute, type: 'file', mode, size: info.size });
    else if (info.isSymbolicLink()) {
      entries.push({ path, absolute, type: 'symlink', mode, size: 0, linkTarget: await readlink(absolute) });
    } else throw new OciError('UNSUPPORTED', `${absolute}: not a file, folder or symlink`);
  }
  return entries;
}

/** sha256 and size of a file, read once. */
export async function hashFile(path: string): Promise<{ digest: Digest; size: number }> {
  const hash = createDigester('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { digest: formatDigest('sha256', hash), size };
}

/** Writes the tree as a reproducible tar.gz to `out`; resolves to its digest and size. */
export async function writeDirTar(
  entries: readonly DirEntry[],
  out: string,
): Promise<{ digest: Digest; size: number }> {
  const tar = pack();
  const fixed = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
  const hash = createDigester('sha256');
  let size = 0;
  const gzip = createGzip();
  gzip.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.byteLength;
  });
  const written = pipeline(tar, gzip, createWriteStream(out, { flags: 'wx' }));
  for (const entry of entries) {
    if (entry.type === 'directory')
      tar.entry({ ...fixed, name: `${entry.path}/`, type: 'directory', mode: entry.mode });
    else if (entry.type === 'symlink') {
      tar.entry({ ...fixed, name: entry.path, type: 'symlink', linkname: entry.linkTarget ?? '', mode: entry.mode });
    } else {
      const stream = tar.entry({ ...fixed, name: entry.path, type: 'file', size: entry.size, mode: entry.mode });
      await pipeline(createReadStream(entry.absolute), stream);
    }
  }
  tar.finalize();
  await written;
  return { digest: formatDigest('sha256', hash), size };
}

/** The manifest's bytes: keys in a fixed order, no whitespace, annotations sorted. */
export function buildArtifactManifest(
  artifactType: string,
  layers: readonly Descriptor[],
  annotations: Record<string, string>,
): Buffer {
  const sorted = Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      artifactType,
      config: emptyDescriptor,
      layers,
      ...(Object.keys(sorted).length === 0 ? {} : { annotations: sorted }),
    }),
  );
}
