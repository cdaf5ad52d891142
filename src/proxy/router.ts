/**
 * @module proxy/router
 * Maps a request to local content or to one configured upstream, and names
 * mirrored content canonically as `<registry-host>/<path>` however it
 * arrived, so every route hits the same cache entry:
 *   1. `?ns=<host>` (containerd mirrors): /v2/library/alpine/…?ns=docker.io
 *   2. a path prefix (podman/CRI-O mirrors, humans): /v2/ghcr.io/org/app/…
 *   3. the default upstream, for clients that send neither (docker's registry-mirrors).
 * Only configured upstreams are ever routed to: an unknown `ns` is refused and
 * an unknown prefix is just a local name. wharf never dials a host it was not told about.
 *
 * With a default upstream every plain name is mirrored (docker's registry-mirrors
 * sends plain names, so a push there must not shadow Docker Hub for every docker
 * client) except the names the `local` patterns match, which are never sent upstream.
 * A name is one or the other, never both: a local name never shadows a mirrored one.
 */
import { OciError } from '../oci/errors.js';
import { parseRepoName, type RepoName } from '../oci/reference.js';
import type { UpstreamClient } from './upstream-client.js';

/** Which plain names stay local when a default upstream is set; see registry/auth/name-pattern.ts for the grammar. */
export type LocalNameTest = (name: string) => boolean;

export interface MirrorUpstream {
  /** The registry host as clients name it: docker.io, ghcr.io, registry.example.test. */
  host: string;
  client: UpstreamClient;
  /** How long a fetched tag is served without asking the upstream again. */
  tagTtlMs: number;
  /** How long "not found" from the upstream is remembered. */
  notFoundTtlMs: number;
  /** Content fetched with credentials: served only to signed-in clients with pull rights. */
  private: boolean;
  /** Fill an image manifest's blobs as soon as it is fetched (prefetch.ts); absent: defaultPrefetch. */
  prefetch?: boolean;
}

export type Route =
  | { kind: 'local'; name: RepoName }
  | {
      kind: 'mirror';
      upstream: MirrorUpstream;
      /** Where mirrored content is kept: <host>/<remote>. */
      canonical: RepoName;
      /** The repository path on the upstream. */
      remote: string;
    };

/** A host in a repository name cannot carry a port (':' is not in the name grammar). */
export function hostComponent(host: string): string {
  return host.toLowerCase().replace(/:/g, '-');
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component === 'localhost';
}

export class Router {
  private readonly byHost = new Map<string, MirrorUpstream>();
  private readonly byComponent = new Map<string, MirrorUpstream>();
  private readonly defaultUpstream: MirrorUpstream | undefined;

  constructor(
    upstreams: readonly MirrorUpstream[],
    defaultHost?: string,
    private readonly isLocal: LocalNameTest = () => false,
  ) {
    for (const upstream of upstreams) {
      this.byHost.set(upstream.host.toLowerCase(), upstream);
      this.byComponent.set(hostComponent(upstream.host), upstream);
    }
    if (defaultHost !== undefined) {
      this.defaultUpstream = this.byHost.get(defaultHost.toLowerCase());
      if (this.defaultUpstream === undefined) {
        throw new OciError('UNKNOWN', `default upstream ${defaultHost} is not a configured upstream`);
      }
    }
  }

  get upstreams(): MirrorUpstream[] {
    return [...this.byHost.values()];
  }

  resolve(name: RepoName, namespace?: string): Route {
    if (namespace !== undefined) {
      const upstream = this.byHost.get(namespace.toLowerCase());
      if (upstream === undefined) {
        throw new OciError(
          'NAME_UNKNOWN',
          `ns=${namespace.slice(0, 100)} is not a configured upstream of this mirror`,
          {
            detail: { ns: namespace.slice(0, 255) },
          },
        );
      }
      return this.mirror(upstream, name);
    }
    const slash = name.indexOf('/');
    if (slash !== -1) {
      const first = name.slice(0, slash);
      const upstream = looksLikeHost(first) ? this.byComponent.get(first) : undefined;
      if (upstream !== undefined) return this.mirror(upstream, name.slice(slash + 1));
    }
    if (this.defaultUpstream !== undefined && !this.isLocal(name)) return this.mirror(this.defaultUpstream, name);
    return { kind: 'local', name };
  }

  private mirror(upstream: MirrorUpstream, path: string): Extract<Route, { kind: 'mirror' }> {
    // Docker Hub keeps official images under library/: `alpine` is `library/alpine`.
    const remote = upstream.host === 'docker.io' && !path.includes('/') ? `library/${path}` : path;
    const canonical = parseRepoName(`${hostComponent(upstream.host)}/${remote}`);
    if (canonical === undefined) {
      throw new OciError('NAME_INVALID', 'repository name too long once the registry host is added', {
        detail: { name: `${upstream.host}/${remote}`.slice(0, 300) },
      });
    }
    return { kind: 'mirror', upstream, canonical, remote };
  }
}
