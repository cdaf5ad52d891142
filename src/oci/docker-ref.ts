/**
 * @module oci/docker-ref
 * Image references as users type them to docker, crane or skopeo, normalised the way docker does
 * (distribution/reference's ParseNormalizedNamed): `alpine` is docker.io/library/alpine:latest,
 * `user/app` is docker.io/user/app, a first component with a '.' or ':' or `localhost` is a
 * registry host. Pure: no I/O.
 */
import { parseDigest, type Digest } from './digest.js';
import { OciError } from './errors.js';
import { parseRepoName, parseTag, type RepoName, type Tag } from './reference.js';

export const dockerHubHost = 'docker.io';
/** The tag docker assumes when a reference names none. */
export const defaultTag = 'latest' as Tag;

export interface DockerRef {
  /** 'docker.io', 'ghcr.io', '127.0.0.1:5000', '[::1]:5000'. */
  registry: string;
  /** The repository within the registry: 'library/alpine'. */
  repository: RepoName;
  tag?: Tag;
  digest?: Digest;
}

/** Docker Hub's other names, all one registry. */
const hubAliases: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function isRegistryHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

function invalid(value: string, why: string): OciError {
  return new OciError('NAME_INVALID', `${JSON.stringify(value.slice(0, 300))} is not an image reference: ${why}`);
}

/**
 * `[registry/]repository[:tag][@digest]`. With `requireReference: false` (wharf tags, repos) a bare
 * repository keeps no tag; otherwise a reference without tag or digest gets `latest`.
 */
export function parseDockerRef(value: string, options: { defaultTag?: boolean } = {}): DockerRef {
  let rest = value.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    if (digest === undefined) throw invalid(value, 'the part after @ is not a digest');
    rest = rest.slice(0, at);
  }
  let tag: Tag | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = parseTag(rest.slice(colon + 1));
    if (tag === undefined) throw invalid(value, 'the tag is not [A-Za-z0-9_][A-Za-z0-9._-]{0,127}');
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  let registry = dockerHubHost;
  let path = rest;
  if (slash >= 0 && isRegistryHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    path = rest.slice(slash + 1);
  }
  if (hubAliases.has(registry)) {
    registry = dockerHubHost;
    // Official images live under library/ (docker's familiar names).
    if (!path.includes('/')) path = `library/${path}`;
  }
  if (path !== path.toLowerCase()) throw invalid(value, 'repository names are lower case');
  const repository = parseRepoName(path);
  if (repository === undefined) throw invalid(value, 'the repository name is not valid');
  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = defaultTag;
  return { registry, repository, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** The reference to ask the registry for: the digest when known (it pins), else the tag. */
export function refReference(ref: DockerRef): Tag | Digest | undefined {
  return ref.digest ?? ref.tag;
}

/** `registry/repository[:tag][@digest]`, fully qualified. */
export function formatDockerRef(ref: DockerRef): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** A registry as users write it: `docker.io`, `localhost:5000`, or a URL's host. */
export function parseRegistryHost(value: string): string {
  const host = value.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (host === '' || host.includes('/') || /\s/.test(host)) {
    throw new OciError('NAME_INVALID', `${JSON.stringify(value.slice(0, 300))} is not a registry host[:port]`);
  }
  return hubAliases.has(host) ? dockerHubHost : host;
}
