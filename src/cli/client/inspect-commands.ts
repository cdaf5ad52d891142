/**
 * @module cli/client/inspect-commands
 * `wharf tags`, `repos`, `digest`, `manifest` and `config`: reading a registry without pulling
 * layers. Data goes to stdout (with --json as one JSON document), everything else to stderr.
 */
import { formatDockerRef, parseRegistryHost, refReference, type DockerRef } from '../../oci/docker-ref.js';
import { OciError } from '../../oci/errors.js';
import { parseManifest } from '../../oci/manifest.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { getManifest, headManifest, listRepositories, listTags } from '../../upstream/registry-reads.js';
import type { UpstreamManifest } from '../../upstream/manifest-response.js';
import { openRef, withClients, writeJson, type Env, type RegistryFlags } from './client-context.js';
import { parsePlatforms, pickPlatform } from './platforms.js';
import { readSmallBlob } from './small-blob.js';

export async function runTags(repo: string, flags: RegistryFlags, env: Env): Promise<void> {
  await withClients(flags, env, async (context) => {
    const { ref, client } = await openRef(context, repo, { defaultTag: false });
    const tags = await listTags(client, ref.repository);
    if (tags === undefined) throw new OciError('NAME_UNKNOWN', `${ref.registry}/${ref.repository}: no such repository`);
    if (flags.json === true) writeJson({ repository: `${ref.registry}/${ref.repository}`, tags });
    else for (const tag of tags) process.stdout.write(`${tag}\n`);
  });
}

export async function runRepos(registry: string, flags: RegistryFlags, env: Env): Promise<void> {
  await withClients(flags, env, async (context) => {
    const host = parseRegistryHost(registry);
    const repositories = await listRepositories(await context.client(host));
    if (flags.json === true) writeJson({ registry: host, repositories });
    else for (const name of repositories) process.stdout.write(`${name}\n`);
  });
}

/** The manifest a reference names; MANIFEST_UNKNOWN when there is none. */
export async function requireManifest(client: RegistryClient, ref: DockerRef): Promise<UpstreamManifest> {
  const reference = refReference(ref) ?? 'latest';
  const manifest = await getManifest(client, ref.repository, reference);
  if (manifest === undefined) throw new OciError('MANIFEST_UNKNOWN', `${formatDockerRef(ref)}: no such manifest`);
  // name:tag@digest: the digest wins (it pins) and the tag is not looked at, as docker and crane do.
  return manifest;
}

export async function runDigest(value: string, flags: RegistryFlags, env: Env): Promise<void> {
  await withClients(flags, env, async (context) => {
    const { ref, client } = await openRef(context, value);
    const head = await headManifest(client, ref.repository, refReference(ref) ?? 'latest');
    if (head === undefined) throw new OciError('MANIFEST_UNKNOWN', `${formatDockerRef(ref)}: no such manifest`);
    if (flags.json === true) writeJson({ ref: formatDockerRef(ref), ...head });
    else process.stdout.write(`${head.digest}\n`);
  });
}

export interface ManifestFlags extends RegistryFlags {
  raw?: boolean;
  platform?: string;
}

export async function runManifest(value: string, flags: ManifestFlags, env: Env): Promise<void> {
  await withClients(flags, env, async (context) => {
    const { ref, client } = await openRef(context, value);
    let manifest = await requireManifest(client, ref);
    if (flags.platform !== undefined) manifest = await platformManifest(client, ref, manifest, flags.platform);
    if (flags.raw === true) {
      process.stdout.write(manifest.bytes);
      return;
    }
    const body = JSON.parse(manifest.bytes.toString('utf8')) as unknown;
    if (flags.json === true) {
      writeJson({
        ref: formatDockerRef(ref),
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        manifest: body,
      });
    } else {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    }
  });
}

/** An index's entry for a platform (an image manifest is its own). */
async function platformManifest(
  client: RegistryClient,
  ref: DockerRef,
  manifest: UpstreamManifest,
  platform: string | undefined,
): Promise<UpstreamManifest> {
  const parsed = parseManifest(manifest.bytes, manifest.mediaType);
  if (parsed.kind !== 'index') return manifest;
  const want = platform === undefined ? undefined : parsePlatforms(platform)[0];
  const entry = pickPlatform(parsed.references, want, formatDockerRef(ref));
  const child = await getManifest(client, ref.repository, entry.digest);
  if (child === undefined)
    throw new OciError('MANIFEST_UNKNOWN', `${formatDockerRef(ref)}: ${entry.digest} is missing`);
  return child;
}

export async function runConfig(value: string, flags: ManifestFlags, env: Env): Promise<void> {
  await withClients(flags, env, async (context) => {
    const { ref, client } = await openRef(context, value);
    const manifest = await platformManifest(client, ref, await requireManifest(client, ref), flags.platform);
    const parsed = parseManifest(manifest.bytes, manifest.mediaType);
    const config = parsed.kind === 'image' ? parsed.references[0] : undefined;
    if (config === undefined)
      throw new OciError('MANIFEST_INVALID', `${formatDockerRef(ref)}: no config in ${manifest.mediaType}`);
    const bytes = await readSmallBlob(client, ref.repository, config);
    if (flags.raw === true) {
      process.stdout.write(bytes);
      return;
    }
    const body = JSON.parse(bytes.toString('utf8')) as unknown;
    if (flags.json === true)
      writeJson({ ref: formatDockerRef(ref), digest: config.digest, mediaType: config.mediaType, config: body });
    else process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
  });
}
