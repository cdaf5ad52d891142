/**
 * @module upstream/registry-writes
 * The write side of the client commands over a RegistryClient (distribution spec §Pushing):
 * blob uploads (POST then one streamed PUT, or a streamed PATCH when the digest is learnt from
 * the bytes), cross-repository mounts, manifests put byte for byte, deletes. Upload Locations
 * come from the registry's answers, so they are checked by the address guard like a redirect.
 */
import { Readable } from 'node:stream';
import { createDigester, digestAlgorithm, formatDigest, parseDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { discardBody } from './read-body.js';
import { deleteScope, pushScope, type RegistryClient } from './registry-client.js';
import { headerValue, type HttpResponse } from './upstream-http.js';

/** An upload session the registry opened: where to send its bytes. */
export interface UploadSession {
  location: URL;
  from: URL;
}

function locationOf(client: RegistryClient, response: HttpResponse, what: string): UploadSession {
  const raw = headerValue(response.headers, 'location');
  if (raw === undefined || !URL.canParse(raw, response.url.href)) {
    throw new OciError('UNAVAILABLE', `${client.host}: ${what}: answer without a usable Location`, { status: 502 });
  }
  return { location: new URL(raw, response.url), from: response.url };
}

/** Starts an upload; with `mount` a registry that holds the blob in `mount.from` links it instead (201). */
export async function startUpload(
  client: RegistryClient,
  repo: string,
  mount?: { digest: Digest; from: string },
): Promise<{ mounted: true } | { mounted: false; session: UploadSession }> {
  const query = mount === undefined ? '' : `?mount=${mount.digest}&from=${encodeURIComponent(mount.from)}`;
  const scope = mount === undefined ? pushScope(repo) : `${pushScope(repo)} repository:${mount.from}:pull`;
  const what = mount === undefined ? `POST upload ${repo}` : `POST mount ${mount.digest} from ${mount.from} to ${repo}`;
  const response = await client.expect(
    {
      method: 'POST',
      target: `/v2/${repo}/blobs/uploads/${query}`,
      scope,
      headers: { 'content-length': '0' },
      body: '',
    },
    [201, 202],
    what,
  );
  await discardBody(response.body);
  if (response.status === 201 && mount !== undefined) return { mounted: true };
  return { mounted: false, session: locationOf(client, response, what) };
}

function withDigest(location: URL, digest: Digest): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

/** Sends a blob of known digest and size in one PUT to a session (monolithic upload). */
export async function putBlob(
  client: RegistryClient,
  repo: string,
  session: UploadSession,
  digest: Digest,
  size: number,
  body: AsyncIterable<Uint8Array>,
): Promise<void> {
  const what = `PUT blob ${repo}@${digest}`;
  const response = await client.expect(
    {
      method: 'PUT',
      target: withDigest(session.location, digest),
      from: session.from,
      scope: pushScope(repo),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: Readable.from(body, { objectMode: false }),
    },
    [201],
    what,
  );
  await discardBody(response.body);
}

/** Streams bytes of unknown digest (PATCH), hashing them, then closes the upload with the digest they have. */
/**
 * Streams `body` into `session` (one PATCH), hashing it, and closes the upload with the digest it
 * has. With `expected`, bytes that hash to another digest are refused before the closing PUT and
 * the session cancelled: the registry keeps nothing.
 */
export async function putUnnamedBlob(
  client: RegistryClient,
  repo: string,
  session: UploadSession,
  body: AsyncIterable<Uint8Array>,
  expected?: Digest,
): Promise<{ digest: Digest; size: number }> {
  const algorithm = expected === undefined ? 'sha256' : digestAlgorithm(expected);
  const hash = createDigester(algorithm);
  let size = 0;
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      hash.update(chunk);
      size += chunk.byteLength;
      yield chunk;
    }
  }
  const what = `PATCH upload ${repo}`;
  const patched = await client.expect(
    {
      method: 'PATCH',
      target: session.location,
      from: session.from,
      scope: pushScope(repo),
      headers: { 'content-type': 'application/octet-stream' },
      body: Readable.from(hashed(), { objectMode: false }),
    },
    [202, 204],
    what,
  );
  await discardBody(patched.body);
  const next = locationOf(client, patched, what);
  const digest = formatDigest(algorithm, hash);
  if (expected !== undefined && digest !== expected) {
    await cancelUpload(client, repo, next).catch(() => undefined);
    throw new OciError('DIGEST_INVALID', `the input hashes to ${digest}, not ${expected}`);
  }
  const closed = await client.expect(
    {
      method: 'PUT',
      target: withDigest(next.location, digest),
      from: next.from,
      scope: pushScope(repo),
      headers: { 'content-length': '0' },
      body: '',
    },
    [201],
    `PUT upload ${repo}@${digest}`,
  );
  await discardBody(closed.body);
  return { digest, size };
}

/** Cancels an upload session (DELETE on its location): the registry drops what it received. */
export async function cancelUpload(client: RegistryClient, repo: string, session: UploadSession): Promise<void> {
  const response = await client.send({
    method: 'DELETE',
    target: session.location,
    from: session.from,
    scope: pushScope(repo),
  });
  await discardBody(response.body);
}

export interface PutManifestAnswer {
  /** What the registry says it stored (Docker-Content-Digest), when it says. */
  digest?: Digest;
  /** The OCI-Subject header: the registry indexed the subject itself (no fallback tag needed). */
  subjectHandled: boolean;
}

export async function putManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
): Promise<PutManifestAnswer> {
  const response = await client.expect(
    {
      method: 'PUT',
      target: `/v2/${repo}/manifests/${reference}`,
      scope: pushScope(repo),
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body: bytes,
    },
    [200, 201, 202],
    `PUT manifest ${repo}:${reference}`,
  );
  await discardBody(response.body);
  const digest = parseDigest(headerValue(response.headers, 'docker-content-digest') ?? '');
  return {
    ...(digest === undefined ? {} : { digest }),
    subjectHandled: headerValue(response.headers, 'oci-subject') !== undefined,
  };
}

/** DELETE a manifest by tag or digest (a registry may refuse tags: UNSUPPORTED); false on 404. */
export async function deleteManifest(client: RegistryClient, repo: string, reference: string): Promise<boolean> {
  const what = `DELETE manifest ${repo}:${reference}`;
  const response = await client.maybe(
    { method: 'DELETE', target: `/v2/${repo}/manifests/${reference}`, scope: deleteScope(repo) },
    what,
  );
  if (response === undefined) return false;
  await discardBody(response.body);
  return true;
}

export async function deleteBlob(client: RegistryClient, repo: string, digest: Digest): Promise<boolean> {
  const what = `DELETE blob ${repo}@${digest}`;
  const response = await client.maybe(
    { method: 'DELETE', target: `/v2/${repo}/blobs/${digest}`, scope: deleteScope(repo) },
    what,
  );
  if (response === undefined) return false;
  await discardBody(response.body);
  return true;
}
