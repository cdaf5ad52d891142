/**
 * @module proxy/proxy-source
 * The pull-through mirror as an ImageSource: a decorator over the local store
 * and the configured upstreams, and the only place that knows both.
 *
 * - A name is local or mirrored (router.ts); content an admin pushed or imported under a mirrored
 *   name is authoritative there and never replaced by upstream content.
 * - Manifests by digest are immutable: fetched once, verified, kept.
 * - Tags are served from cache within the upstream's TTL; after it they are
 *   revalidated with a HEAD (free on Docker Hub) and refetched only if the digest
 *   moved. When the upstream fails, the last known tag is served (stale-if-error).
 *   "Not found" is remembered briefly.
 * - Blobs are filled once, whatever the concurrency (fill-registry.ts).
 * - Offline: only what is local is served; nothing dials out.
 */
import { parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import type {
  BlobHandle,
  ImageSource,
  ManifestContent,
  ManifestInfo,
  PageRequest,
  ReadOptions,
} from '../oci/image-source.js';
import type { Logger } from '../oci/logger.js';
import type { RepoName, Tag } from '../oci/reference.js';
import type { LocalStore } from '../store/local-store.js';
import { FillRegistry } from './fill-registry.js';
import { NegativeCache } from './negative-cache.js';
import type { Route, Router } from './router.js';
import { SingleFlight } from './single-flight.js';

type MirrorRoute = Extract<Route, { kind: 'mirror' }>;

export interface ProxyOptions {
  offline?: boolean;
  logger: Logger;
  now?: () => number;
}

export class ProxySource implements ImageSource {
  readonly fills: FillRegistry;
  private readonly manifestFlights = new SingleFlight<ManifestContent | undefined>();
  private readonly notFound = new NegativeCache();
  private readonly offline: boolean;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(
    private readonly store: LocalStore,
    private readonly router: Router,
    options: ProxyOptions,
  ) {
    this.offline = options.offline ?? false;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.fills = new FillRegistry(store, options.logger);
  }

  /** Shutdown: lets fills in progress finish and be recorded before the index closes. */
  settle(): Promise<void> {
    return this.fills.settle();
  }

  async openBlob(name: RepoName, digest: Digest, options?: ReadOptions): Promise<BlobHandle | undefined> {
    const route = this.router.resolve(name, options?.namespace);
    if (route.kind === 'local') return this.store.openBlob(name, digest);
    const cached = await this.store.openBlob(route.canonical, digest);
    if (cached !== undefined) return cached;
    // Content is global: a blob fetched through another name only needs a link.
    if (this.store.contentSize(digest) !== undefined) {
      this.store.linkBlob(route.canonical, digest);
      return this.store.openBlob(route.canonical, digest);
    }
    if (this.offline) return undefined;
    return this.fills.open(digest, route.canonical, () => route.upstream.client.getBlob(route.remote, digest));
  }

  async getManifest(
    name: RepoName,
    reference: Tag | Digest,
    options?: ReadOptions,
  ): Promise<ManifestContent | undefined> {
    const route = this.router.resolve(name, options?.namespace);
    if (route.kind === 'local') return this.store.getManifest(name, reference);
    const digest = parseDigest(reference);
    const accept = options?.accept ?? [];
    return digest === undefined
      ? this.manifestByTag(route, reference as Tag, accept)
      : this.manifestByDigest(route, digest, accept);
  }

  async statManifest(
    name: RepoName,
    reference: Tag | Digest,
    options?: ReadOptions,
  ): Promise<ManifestInfo | undefined> {
    // A HEAD through the mirror fetches what a GET would: the client's GET follows, and is then local.
    const manifest = await this.getManifest(name, reference, options);
    return manifest === undefined
      ? undefined
      : { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
  }

  /**
   * Mirrored names list the upstream's tags merged with the local ones when
   * the upstream answers, and the local ones alone when it does not (or offline).
   */
  async listTags(name: RepoName, page: PageRequest, options?: ReadOptions): Promise<string[] | undefined> {
    const route = this.router.resolve(name, options?.namespace);
    if (route.kind === 'local') return this.store.listTags(name, page);
    const local = await this.store.listTags(route.canonical, {});
    let upstream: string[] | undefined;
    if (!this.offline) {
      try {
        upstream = await route.upstream.client.listTags(route.remote);
      } catch (error) {
        this.logger.warn({ err: error, name: route.canonical }, 'upstream tags/list failed; listing local tags only');
      }
    }
    if (upstream === undefined && local === undefined) return undefined;
    const merged = [...new Set([...(local ?? []), ...(upstream ?? [])])].sort();
    const after = page.last === undefined ? merged : merged.filter((tag) => tag > (page.last ?? ''));
    return page.n === undefined ? after : after.slice(0, page.n);
  }

  /** Referrers of mirrored content are answered from what is local (upstreams vary too much in support). */
  async listReferrers(
    name: RepoName,
    subject: Digest,
    artifactType?: string,
    options?: ReadOptions,
  ): Promise<Descriptor[]> {
    const route = this.router.resolve(name, options?.namespace);
    return this.store.listReferrers(route.kind === 'local' ? name : route.canonical, subject, artifactType);
  }

  listRepositories(page: PageRequest): Promise<string[]> {
    return this.store.listRepositories(page);
  }

  private async manifestByDigest(
    route: MirrorRoute,
    digest: Digest,
    accept: readonly string[],
  ): Promise<ManifestContent | undefined> {
    const cached = await this.store.getManifest(route.canonical, digest);
    if (cached !== undefined || this.offline) return cached;
    const key = `${route.canonical}@${digest}`;
    if (this.notFound.has(key, this.now())) return undefined;
    return this.manifestFlights.run(key, async () => {
      const fetched = await route.upstream.client.getManifest(route.remote, digest, accept);
      if (fetched === undefined) {
        this.notFound.add(key, route.upstream.notFoundTtlMs, this.now());
        return undefined;
      }
      await this.store.putFetchedManifest(route.canonical, fetched);
      return { ...fetched, digest };
    });
  }

  private async manifestByTag(
    route: MirrorRoute,
    tag: Tag,
    accept: readonly string[],
  ): Promise<ManifestContent | undefined> {
    const state = this.store.tagState(route.canonical, tag);
    if (state !== undefined) {
      const fresh = state.confirmed_at !== null && this.now() - state.confirmed_at < route.upstream.tagTtlMs;
      if (state.source !== 'fetched' || this.offline || fresh) return this.store.getManifest(route.canonical, tag);
    } else if (this.offline) {
      return undefined;
    }
    const key = `${route.canonical}:${tag}`;
    if (state === undefined && this.notFound.has(key, this.now())) return undefined;
    return this.manifestFlights.run(key, () => this.refreshTag(route, tag, accept, state?.digest));
  }

  /** Asks the upstream where the tag points now; known: the digest served so far, if any. */
  private async refreshTag(
    route: MirrorRoute,
    tag: Tag,
    accept: readonly string[],
    known: Digest | undefined,
  ): Promise<ManifestContent | undefined> {
    const key = `${route.canonical}:${tag}`;
    const client = route.upstream.client;
    try {
      if (known !== undefined) {
        // HEAD does not count against Docker Hub's pull limit; GET only if the digest moved.
        const head = await client.headManifest(route.remote, tag, accept);
        if (head === undefined) {
          this.notFound.add(key, route.upstream.notFoundTtlMs, this.now());
          return undefined;
        }
        if (head.digest === known) {
          this.store.confirmTag(route.canonical, tag, this.now());
          return this.store.getManifest(route.canonical, tag);
        }
        const moved = await this.store.getManifest(route.canonical, head.digest);
        if (moved !== undefined) {
          await this.store.putFetchedManifest(route.canonical, moved, tag);
          return moved;
        }
      }
      const fetched = await client.getManifest(route.remote, tag, accept);
      if (fetched === undefined) {
        this.notFound.add(key, route.upstream.notFoundTtlMs, this.now());
        return undefined;
      }
      await this.store.putFetchedManifest(route.canonical, fetched, tag);
      return fetched;
    } catch (error) {
      if (known === undefined) throw error;
      this.logger.warn(
        { err: error, name: route.canonical, tag, digest: known },
        'upstream failed revalidating a tag; serving the last known digest (stale-if-error)',
      );
      return this.store.getManifest(route.canonical, tag);
    }
  }
}
