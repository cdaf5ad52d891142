/**
 * @module archive/docker-names
 * The names a `docker save` tar gives its images (manifest.json's RepoTags),
 * read as docker reads them: a RepoTag is a familiar name, so `alpine:3.20`
 * means `docker.io/library/alpine:3.20` and `team/app:v1` means
 * `docker.io/team/app:v1`; a first component with a '.' or ':' or `localhost`
 * is a registry host and kept (`index.docker.io` is `docker.io`; a port becomes
 * `-5000`, as the mirror names hosts: `localhost:5000/app` → `localhost-5000/app`). This is the
 * opposite of OCI layouts (decision 0005), on purpose: a RepoTag is written by
 * docker in its familiar form, so the normalisation restores what it stripped.
 * `--name` replaces the repository and keeps the tag.
 */
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { hasRegistryHost, parseImageRef, type ImageRef } from '../oci/image-ref.js';
import { parseDigest } from '../oci/digest.js';
import type { RepoName } from '../oci/reference.js';

/** `alpine:3.20` → docker.io/library/alpine:3.20, as docker's ParseNormalizedNamed does. */
export function normalizeDockerRef(repoTag: string): ImageRef | undefined {
  let full = repoTag;
  if (!hasRegistryHost(repoTag)) full = dockerHubName(repoTag);
  else if (repoTag.startsWith('index.docker.io/')) full = `docker.io/${repoTag.slice('index.docker.io/'.length)}`;
  else {
    // A repository name cannot hold ':': a host with a port is kept as the mirror keeps it (localhost-5000/app).
    const slash = repoTag.indexOf('/');
    full = `${repoTag.slice(0, slash).toLowerCase().replace(/:/g, '-')}${repoTag.slice(slash)}`;
  }
  const ref = parseImageRef(full);
  // A RepoTag with a digest is not a tag; docker writes none.
  if (ref === undefined || parseDigest(ref.reference) !== undefined) return undefined;
  return ref;
}

/** A name without a registry host, as docker reads it: Docker Hub's, official images under `library/`. */
export function dockerHubName(name: string): string {
  return name.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
}

/** The references one image of the archive is stored under: its RepoTags, or its digest under --name. */
export function dockerImageRefs(repoTags: readonly string[], digest: Digest, name?: RepoName): ImageRef[] {
  const refs: ImageRef[] = [];
  for (const repoTag of repoTags) {
    const ref = normalizeDockerRef(repoTag);
    if (ref === undefined) {
      throw new OciError(
        'NAME_INVALID',
        `manifest.json: RepoTag ${JSON.stringify(repoTag.slice(0, 300))} is not name:tag`,
      );
    }
    refs.push(name === undefined ? ref : { name, reference: ref.reference });
  }
  if (refs.length > 0) return refs;
  if (name !== undefined) return [{ name, reference: digest }];
  throw new OciError('NAME_INVALID', `manifest.json: image ${digest} has no RepoTags: pass --name`);
}
