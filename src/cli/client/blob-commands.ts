/**
 * @module cli/client/blob-commands
 * `wharf delete <ref>` and `wharf blob get|put|head`: single objects in a registry. A blob read is
 * streamed and verified against its digest (a mismatch is an error and no file is left behind);
 * a blob put is verified by us while it streams and by the registry on commit.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { TempOutput, type OutputFs } from '../../archive/durable-output.js';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createDigester, formatDigest, requireDigest, type Digest } from '../../oci/digest.js';
import { formatDockerRef, parseDockerRef, refReference } from '../../oci/docker-ref.js';
import { OciError } from '../../oci/errors.js';
import { verifyStream } from '../../oci/verified-stream.js';
import { getBlob, headBlob } from '../../upstream/registry-reads.js';
import { deleteBlob, deleteManifest, putBlob, putUnnamedBlob, startUpload } from '../../upstream/registry-writes.js';
import type { RegistryClient } from '../../upstream/registry-client.js';
import { openRef, withClients, writeJson, type Env, type RegistryFlags } from './client-context.js';

export async function runDelete(value: string, flags: RegistryFlags, env: Env): Promise<void> {
  await withClients(flags, env, async (context) => {
    const { ref, client } = await openRef(context, value);
    const reference = refReference(ref) ?? 'latest';
    let deleted: boolean;
    try {
      deleted = await deleteManifest(client, ref.repository, reference);
    } catch (error) {
      if (
        error instanceof OciError &&
        ref.digest === undefined &&
        (error.code === 'UNSUPPORTED' || error.status === 400)
      ) {
        throw new OciError(
          error.code,
          `${error.message}; this registry deletes manifests by digest only: wharf digest ${formatDockerRef(ref)}, then wharf delete name@digest (that removes every tag on it)`,
          { cause: error },
        );
      }
      throw error;
    }
    if (!deleted) throw new OciError('MANIFEST_UNKNOWN', `${formatDockerRef(ref)}: no such manifest`);
    if (flags.json === true) writeJson({ deleted: formatDockerRef(ref) });
    else process.stdout.write(`deleted ${formatDockerRef(ref)}\n`);
  });
}

async function openRepo(
  flags: RegistryFlags,
  env: Env,
  repo: string,
  body: (client: RegistryClient, repository: string) => Promise<void>,
): Promise<void> {
  await withClients(flags, env, async (context) => {
    const ref = parseDockerRef(repo, { defaultTag: false });
    if (ref.tag !== undefined || ref.digest !== undefined)
      throw new OciError('NAME_INVALID', `${repo}: name a repository, without tag or digest`);
    await body(await context.client(ref.registry), ref.repository);
  });
}

export async function runBlobHead(repo: string, digest: string, flags: RegistryFlags, env: Env): Promise<void> {
  const wanted = requireDigest(digest);
  await openRepo(flags, env, repo, async (client, repository) => {
    const size = await headBlob(client, repository, wanted);
    if (size === undefined) throw new OciError('BLOB_UNKNOWN', `${client.host}/${repository}: no blob ${wanted}`);
    if (flags.json === true) writeJson({ digest: wanted, size });
    else process.stdout.write(`${wanted} ${size}\n`);
  });
}

export interface BlobGetFlags extends RegistryFlags {
  output?: string;
  /**
   * Not a flag (no option sets it): the fs calls the output's durability rests on
   * (archive/durable-output.ts). Tests hand in wrappers that log each sync and rename; absent, Node's.
   */
  outputFs?: OutputFs;
}

export async function runBlobGet(repo: string, digest: string, flags: BlobGetFlags, env: Env): Promise<void> {
  const wanted = requireDigest(digest);
  await openRepo(flags, env, repo, async (client, repository) => {
    const blob = await getBlob(client, repository, wanted);
    if (blob === undefined) throw new OciError('BLOB_UNKNOWN', `${client.host}/${repository}: no blob ${wanted}`);
    // Without a length the size check is the digest's alone; with one, both.
    const verified = verifyBlob(blob.body, wanted, blob.size);
    if (flags.output === undefined || flags.output === '-') {
      await pipeline(Readable.from(verified), process.stdout, { end: false });
      return;
    }
    const file = new TempOutput(flags.output, flags.outputFs);
    try {
      await pipeline(Readable.from(verified), file.stream);
      await file.commit();
    } catch (error) {
      await file.discard();
      throw error;
    }
  });
}

async function* verifyBlob(
  body: AsyncIterable<Uint8Array>,
  digest: Digest,
  size: number | undefined,
): AsyncGenerator<Uint8Array> {
  if (size !== undefined) {
    yield* verifyStream(body, { digest, size });
    return;
  }
  const hash = createDigester('sha256');
  let held: Uint8Array | undefined;
  for await (const chunk of body) {
    hash.update(chunk);
    if (held !== undefined) yield held;
    held = chunk;
  }
  const computed = formatDigest('sha256', hash);
  if (computed !== digest) throw new OciError('DIGEST_INVALID', `blob ${digest}: content hashes to ${computed}`);
  if (held !== undefined) yield held;
}

export interface BlobPutFlags extends RegistryFlags {
  input?: string;
}

/** With a digest the bytes stream once (checked on the way); without, they stream once and the registry is told what they hashed to. */
export async function runBlobPut(
  repo: string,
  digest: string | undefined,
  flags: BlobPutFlags,
  env: Env,
): Promise<void> {
  const expected = digest === undefined ? undefined : requireDigest(digest);
  const input: AsyncIterable<Uint8Array> =
    flags.input === undefined || flags.input === '-' ? process.stdin : createReadStream(flags.input);
  await openRepo(flags, env, repo, async (client, repository) => {
    const started = await startUpload(client, repository);
    if (started.mounted) throw new OciError('UNKNOWN', 'an upload without mount was answered as a mount');
    let written: { digest: Digest; size: number };
    if (expected !== undefined && flags.input !== undefined && flags.input !== '-') {
      const { size } = await stat(flags.input);
      await putBlob(
        client,
        repository,
        started.session,
        expected,
        size,
        verifyStream(input, { digest: expected, size }),
      );
      written = { digest: expected, size };
    } else {
      // From stdin the size is not known before the end: the digest is checked before the upload is closed.
      written = await putUnnamedBlob(client, repository, started.session, input, expected);
    }
    if (flags.json === true) writeJson({ repository: `${client.host}/${repository}`, ...written });
    else process.stdout.write(`${written.digest}\n`);
  });
}

export async function runBlobDelete(repo: string, digest: string, flags: RegistryFlags, env: Env): Promise<void> {
  const wanted = requireDigest(digest);
  await openRepo(flags, env, repo, async (client, repository) => {
    if (!(await deleteBlob(client, repository, wanted)))
      throw new OciError('BLOB_UNKNOWN', `${client.host}/${repository}: no blob ${wanted}`);
    if (flags.json !== true) process.stdout.write(`deleted ${wanted}\n`);
    else writeJson({ deleted: wanted });
  });
}
