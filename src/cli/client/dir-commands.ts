/**
 * @module cli/client/dir-commands
 * `wharf push-dir <dir> <ref>` and `wharf pull-dir <ref> <dir>`: a folder as an OCI artifact
 * (dir-artifact.ts) and back. Push sends only the blobs the repository lacks (HEAD first).
 * Pull verifies every byte, writes into a fresh folder beside the target and renames it into
 * place when complete, and refuses any entry that would land outside the target (absolute,
 * `..`, or through a symlink).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestOf } from '../../oci/digest.js';
import { formatDockerRef, refReference } from '../../oci/docker-ref.js';
import { OciError } from '../../oci/errors.js';
import { mediaTypes } from '../../oci/media-types.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { headBlob } from '../../upstream/registry-reads.js';
import { putBlob, putManifest, startUpload } from '../../upstream/registry-writes.js';
import { openRef, withClients, writeJson, type Env, type RegistryFlags } from './client-context.js';
import {
  buildArtifactManifest,
  defaultArtifactType,
  emptyConfig,
  emptyDescriptor,
  fileLayerType,
  hashFile,
  listDir,
  modeAnnotation,
  tarAnnotation,
  tarLayerType,
  titleAnnotation,
  writeDirTar,
} from './dir-artifact.js';
import { pullDir } from './pull-dir.js';

export interface PushDirFlags extends RegistryFlags {
  artifactType?: string;
  annotation?: string[];
  tar?: boolean;
}

function parseAnnotations(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new OciError('UNSUPPORTED', `--annotation ${JSON.stringify(value)}: expected key=value`);
    out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

async function sendBlob(
  client: RegistryClient,
  repo: string,
  blob: Descriptor,
  open: () => AsyncIterable<Uint8Array>,
): Promise<boolean> {
  if ((await headBlob(client, repo, blob.digest)) !== undefined) return false;
  const started = await startUpload(client, repo);
  if (started.mounted) throw new OciError('UNKNOWN', 'an upload without mount was answered as a mount');
  await putBlob(client, repo, started.session, blob.digest, blob.size, open());
  return true;
}

async function* single(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

export async function runPushDir(dir: string, value: string, flags: PushDirFlags, env: Env): Promise<void> {
  const annotations = parseAnnotations(flags.annotation ?? []);
  const entries = await listDir(dir);
  const scratch = await mkdtemp(join(tmpdir(), 'wharf-push-dir-'));
  try {
    const layers: { descriptor: Descriptor; path: string }[] = [];
    if (flags.tar === true) {
      const path = join(scratch, 'layer.tar.gz');
      const { digest, size } = await writeDirTar(entries, path);
      layers.push({
        descriptor: { mediaType: tarLayerType, digest, size, annotations: { [tarAnnotation]: 'true' } },
        path,
      });
    } else {
      for (const entry of entries) {
        if (entry.type === 'symlink') {
          throw new OciError('UNSUPPORTED', `${entry.absolute} is a symlink: push with --tar to keep links`);
        }
        if (entry.type !== 'file') continue;
        const { digest, size } = await hashFile(entry.absolute);
        const fileAnnotations = {
          [modeAnnotation]: entry.mode.toString(8).padStart(4, '0'),
          [titleAnnotation]: entry.path,
        };
        layers.push({
          descriptor: { mediaType: fileLayerType, digest, size, annotations: fileAnnotations },
          path: entry.absolute,
        });
      }
    }
    const manifest = buildArtifactManifest(
      flags.artifactType ?? defaultArtifactType,
      layers.map((l) => l.descriptor),
      annotations,
    );
    const digest = digestOf(manifest);
    await withClients(flags, env, async (context) => {
      const { ref, client } = await openRef(context, value);
      let sent = 0;
      if (await sendBlob(client, ref.repository, emptyDescriptor, () => single(emptyConfig))) sent++;
      const seen = new Set<string>();
      for (const layer of layers) {
        // Two files with the same bytes are one blob.
        if (seen.has(layer.descriptor.digest)) continue;
        seen.add(layer.descriptor.digest);
        if (await sendBlob(client, ref.repository, layer.descriptor, () => createReadStream(layer.path))) sent++;
      }
      await putManifest(client, ref.repository, refReference(ref) ?? digest, manifest, mediaTypes.ociManifest);
      if (flags.json === true) {
        writeJson({
          ref: formatDockerRef(ref),
          digest,
          mediaType: mediaTypes.ociManifest,
          size: manifest.byteLength,
          layers: layers.length,
          blobsSent: sent,
        });
      } else {
        process.stdout.write(
          `pushed ${formatDockerRef(ref)} (${digest}): ${layers.length} layers, ${sent} blobs sent\n`,
        );
      }
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export async function runPullDir(value: string, dir: string, flags: RegistryFlags, env: Env): Promise<void> {
  await withClients(flags, env, async (context) => {
    const { ref, client } = await openRef(context, value);
    const result = await pullDir(client, ref, dir);
    if (flags.json === true) writeJson({ ref: formatDockerRef(ref), directory: dir, ...result });
    else process.stdout.write(`pulled ${formatDockerRef(ref)} (${result.digest}) into ${dir}: ${result.files} files\n`);
  });
}
