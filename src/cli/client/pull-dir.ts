/**
 * @module cli/client/pull-dir
 * Restores a folder artifact (dir-artifact.ts) from a registry: every layer verified while it
 * streams, written into a fresh folder beside the target, renamed into place when all is there.
 * A path that would leave the target (absolute, `..`, a backslash, or a parent that is a symlink
 * written by the same artifact) is refused and nothing is left behind.
 */
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, rmdir, symlink } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { formatDockerRef, refReference, type DockerRef } from '../../oci/docker-ref.js';
import { OciError } from '../../oci/errors.js';
import { parseManifest } from '../../oci/manifest.js';
import { verifyStream } from '../../oci/verified-stream.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { getBlob, getManifest } from '../../upstream/registry-reads.js';
import { modeAnnotation, tarAnnotation, titleAnnotation } from './dir-artifact.js';

/** The entry's segments, or a refusal when it could land outside the target. */
export function requireInside(path: string): string[] {
  const shown = JSON.stringify(path.slice(0, 300));
  if (path.startsWith('/') || path.includes('\\') || path.includes('\0') || /^[a-zA-Z]:/.test(path)) {
    throw new OciError('NAME_INVALID', `entry ${shown} escapes the target folder (absolute or unsafe path)`);
  }
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.includes('..')) {
    throw new OciError('NAME_INVALID', `entry ${shown} escapes the target folder (..)`);
  }
  return segments;
}

/** A symlink may point only inside the folder (relative, staying within it once resolved from its own place). */
function requireLinkInside(path: string, target: string): void {
  const landed = posix.normalize(posix.join(posix.dirname(path), target));
  if (target.startsWith('/') || landed === '..' || landed.startsWith('../')) {
    throw new OciError(
      'NAME_INVALID',
      `symlink ${JSON.stringify(path)} → ${JSON.stringify(target)} points outside the target folder`,
    );
  }
}

export async function pullDir(
  client: RegistryClient,
  ref: DockerRef,
  dir: string,
): Promise<{ digest: Digest; files: number }> {
  const manifest = await getManifest(client, ref.repository, refReference(ref) ?? 'latest');
  if (manifest === undefined) throw new OciError('MANIFEST_UNKNOWN', `${formatDockerRef(ref)}: no such manifest`);
  const parsed = parseManifest(manifest.bytes, manifest.mediaType);
  if (parsed.kind !== 'image')
    throw new OciError('UNSUPPORTED', `${formatDockerRef(ref)} is an ${parsed.kind}, not a folder artifact`);
  const target = resolve(dir);
  await mkdir(dirname(target), { recursive: true });
  const staging = await mkdtemp(join(dirname(target), `.${basename(target)}.wharf-`));
  let files = 0;
  // Paths already written as symlinks: nothing may be written through one.
  const links = new Set<string>();
  try {
    for (const layer of parsed.references.slice(1)) {
      if (layer.annotations?.[tarAnnotation] === 'true') files += await extractTar(client, ref, layer, staging, links);
      else {
        await writeFileLayer(client, ref, layer, staging, links);
        files++;
      }
    }
    await replaceTarget(staging, target);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return { digest: manifest.digest, files };
}

/** An existing empty folder is replaced; a non-empty one is left alone (never merged into). */
async function replaceTarget(staging: string, target: string): Promise<void> {
  try {
    if ((await readdir(target)).length > 0) {
      throw new OciError('UNSUPPORTED', `${target} exists and is not empty: pull into a new folder`);
    }
    await rmdir(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await rename(staging, target);
}

function checkParents(segments: readonly string[], links: ReadonlySet<string>): void {
  for (let i = 1; i < segments.length; i++) {
    if (links.has(segments.slice(0, i).join('/'))) {
      throw new OciError('NAME_INVALID', `entry ${JSON.stringify(segments.join('/'))} is written through a symlink`);
    }
  }
}

async function openLayer(
  client: RegistryClient,
  ref: DockerRef,
  layer: Descriptor,
): Promise<AsyncIterable<Uint8Array>> {
  const blob = await getBlob(client, ref.repository, layer.digest);
  if (blob === undefined)
    throw new OciError('BLOB_UNKNOWN', `${formatDockerRef(ref)}: layer ${layer.digest} is missing`);
  return verifyStream(blob.body, layer);
}

async function writeFileLayer(
  client: RegistryClient,
  ref: DockerRef,
  layer: Descriptor,
  root: string,
  links: ReadonlySet<string>,
): Promise<void> {
  const title = layer.annotations?.[titleAnnotation];
  if (title === undefined)
    throw new OciError('UNSUPPORTED', `layer ${layer.digest} has no ${titleAnnotation}: not a folder artifact`);
  const segments = requireInside(title);
  checkParents(segments, links);
  const path = join(root, ...segments);
  await mkdir(dirname(path), { recursive: true });
  await pipeline(Readable.from(await openLayer(client, ref, layer)), createWriteStream(path, { flags: 'wx' }));
  const mode = Number.parseInt(layer.annotations?.[modeAnnotation] ?? '644', 8);
  if (Number.isInteger(mode)) await chmod(path, mode & 0o777);
}

async function extractTar(
  client: RegistryClient,
  ref: DockerRef,
  layer: Descriptor,
  root: string,
  links: Set<string>,
): Promise<number> {
  const tar = extract();
  const done = pipeline(Readable.from(await openLayer(client, ref, layer)), createGunzip(), tar);
  done.catch(() => undefined);
  let files = 0;
  for await (const entry of tar) {
    const { name, type, mode, linkname } = entry.header;
    const segments = requireInside(name);
    checkParents(segments, links);
    const path = join(root, ...segments);
    const relative = segments.join('/');
    if (type === 'directory') {
      await mkdir(path, { recursive: true });
      await chmod(path, (mode ?? 0o755) & 0o777);
      entry.resume();
    } else if (type === 'file') {
      await mkdir(dirname(path), { recursive: true });
      await pipeline(entry, createWriteStream(path, { flags: 'wx', mode: (mode ?? 0o644) & 0o777 }));
      await chmod(path, (mode ?? 0o644) & 0o777);
      files++;
    } else if (type === 'symlink') {
      requireLinkInside(relative, linkname ?? '');
      await mkdir(dirname(path), { recursive: true });
      await symlink(linkname ?? '', path);
      links.add(relative);
      entry.resume();
    } else {
      throw new OciError('UNSUPPORTED', `entry ${JSON.stringify(name)}: ${type} entries are not restored`);
    }
  }
  await done;
  return files;
}
