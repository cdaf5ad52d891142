/**
 * @module proxy/upstream-reader
 * The configured upstreams as an ImageReader, for `wharf preload`: a name is
 * routed as the mirror routes it (`docker.io/library/alpine`, or `alpine` with a
 * default upstream) and read from that upstream, with its credentials and
 * address guard. Nothing here is trusted: the transfer engine verifies every
 * blob against its digest while it streams and the store re-checks each
 * manifest's digest, so this reader is the same verified path as a mirror fill.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobHandle, ManifestContent } from '../oci/image-source.js';
import type { ImageReader } from '../oci/image-transfer.js';
import { mediaTypes } from '../oci/media-types.js';
import type { RepoName, Tag } from '../oci/reference.js';
import { blobReadOnce } from '../upstream/blob-once.js';
import type { Route, Router } from './router.js';

const accept = [mediaTypes.ociIndex, mediaTypes.dockerManifestList, mediaTypes.ociManifest, mediaTypes.dockerManifest];

export class UpstreamReader implements ImageReader {
  constructor(private readonly router: Router) {}

  /** The route of a name, refusing one that no upstream serves (a local name). */
  mirrorRoute(name: RepoName): Extract<Route, { kind: 'mirror' }> {
    const route = this.router.resolve(name);
    if (route.kind !== 'mirror') {
      throw new OciError(
        'NAME_UNKNOWN',
        `${name} names no configured upstream: use <registry-host>/<path> (e.g. docker.io/library/alpine), or --default-upstream`,
      );
    }
    return route;
  }

  async getManifest(name: RepoName, reference: Tag | Digest): Promise<ManifestContent | undefined> {
    const route = this.mirrorRoute(name);
    const manifest = await route.upstream.client.getManifest(route.remote, reference, accept);
    if (manifest === undefined) return undefined;
    return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, bytes: manifest.bytes };
  }

  async listReferrers(name: RepoName, subject: Digest): Promise<Descriptor[]> {
    const route = this.mirrorRoute(name);
    return (await route.upstream.client.listReferrers?.(route.remote, subject)) ?? [];
  }

  async openBlob(name: RepoName, digest: Digest): Promise<BlobHandle | undefined> {
    const route = this.mirrorRoute(name);
    const blob = await route.upstream.client.getBlob(route.remote, digest);
    return blob === undefined ? undefined : blobReadOnce(`upstream ${route.upstream.host}`, digest, blob);
  }
}
