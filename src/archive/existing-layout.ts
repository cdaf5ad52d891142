/**
 * @module archive/existing-layout
 * What a directory holds before wharf writes an OCI layout into it: nothing (it is
 * created), or a layout (its oci-layout version checked, index.json and docker's
 * manifest.json read, so new images merge into them). A directory that holds other
 * files and no `oci-layout` is refused: wharf does not scatter blobs into a folder
 * that is not a layout.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isRecord } from '../oci/descriptor.js';
import { OciError } from '../oci/errors.js';
import { maxManifestBytes } from '../oci/manifest.js';
import { parseDockerManifestJson } from './docker-manifest.js';
import type { DockerLoadEntry } from './docker-load-manifest.js';
import { indexFile, layoutFile } from './layout-names.js';

export interface ExistingLayout {
  /** True when the directory did not exist: abort() may then remove it whole. */
  createdDir: boolean;
  hasLayoutFile: boolean;
  /** index.json's other top-level fields (annotations), kept on rewrite. */
  index: Record<string, unknown>;
  manifests: Record<string, unknown>[];
  dockerManifest: DockerLoadEntry[];
}

export async function readExistingLayout(dir: string): Promise<ExistingLayout> {
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const empty = { hasLayoutFile: false, index: {}, manifests: [], dockerManifest: [] };
  if (info === undefined) {
    await mkdir(dir, { recursive: true });
    return { createdDir: true, ...empty };
  }
  if (!info.isDirectory()) throw new OciError('NAME_INVALID', `${dir} exists and is not a directory`);
  const layout = await readOptional(join(dir, layoutFile), 64 * 1024);
  if (layout === undefined) {
    if ((await readdir(dir)).length > 0) {
      throw new OciError('NAME_INVALID', `${dir} is not empty and holds no oci-layout: not an OCI image layout`);
    }
    return { createdDir: false, ...empty };
  }
  const version = (parseJson(layout, layoutFile) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw new OciError('UNSUPPORTED', `${dir}/oci-layout: unsupported imageLayoutVersion ${JSON.stringify(version)}`);
  }
  const indexBytes = await readOptional(join(dir, indexFile), maxManifestBytes);
  const index = indexBytes === undefined ? {} : parseJson(indexBytes, indexFile);
  const manifests = index.manifests ?? [];
  if (!Array.isArray(manifests) || !manifests.every(isRecord)) {
    throw new OciError('MANIFEST_INVALID', `${dir}/index.json: manifests is not a list of descriptors`);
  }
  const dockerBytes = await readOptional(join(dir, 'manifest.json'), maxManifestBytes);
  const dockerManifest = (dockerBytes === undefined ? [] : parseDockerManifestJson(dockerBytes)).map((e) => ({
    Config: e.config,
    RepoTags: e.repoTags,
    Layers: e.layers,
  }));
  const { manifests: _listed, ...rest } = index;
  return { createdDir: false, hasLayoutFile: true, index: rest, manifests, dockerManifest };
}

async function readOptional(path: string, cap: number): Promise<Uint8Array | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return undefined;
  if (!info.isFile() || info.size > cap) throw new OciError('MANIFEST_INVALID', `${path} is not a small regular file`);
  return readFile(path);
}

function parseJson(bytes: Uint8Array, label: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new OciError('MANIFEST_INVALID', `${label} is not valid JSON`, { cause: error });
  }
  if (!isRecord(value)) throw new OciError('MANIFEST_INVALID', `${label} is not a JSON object`);
  return value;
}
