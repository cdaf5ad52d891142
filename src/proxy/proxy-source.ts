/**
 * @module proxy/proxy-source
 * The pull-through mirror as an ImageSource: a decorator over the local store
 * and the configured upstreams, and the only place that knows both.
 *
 * - A name is local or mirrored (router.ts); content an admin pushed or imported under a mirrored
 *   name is authoritative there and never replaced by upstream content.
 * - Manifests by digest are immutable: fetched once, verified, kept.
 * - Tags are served from cache within the upstream's TTL; after it they are
 *   revalidated in the background with a HEAD (free on Docker Hub), one at a time
 *   per tag, and refetched only if the digest moved (revalidations.ts). A pull
 *   waits for that at most a short budget, then gets the cached tag: an upstream
 *   outage never costs a pull its timeout (stale-while-revalidate, stale-if-error).
 *   A 401/403 is no outage: the tag is dropped and no longer served.
 *   "Not found" is remembered briefly, per Accept set (accept-key.ts).
 * - Upstream tag listings are shared and kept briefly (tag-listings.ts); so are upstream
 *   referrers listings, which are merged with the local referrers (referrer-listings.ts).
 * - Blobs are filled once, whatever the concurrency (fill-registry.ts), and at
 *   most `maxConcurrentFills` at a time. An image manifest fetched for a client
 *   starts the fills of its blobs at once (prefetch.ts), so its blob requests join them. A HEAD asks the upstream with a HEAD and
 *   downloads nothing.
 * - A blob is served under a mirrored name when it was fetched for that name, or
 *   when that name's upstream confirms it has it: bytes held for another name
 *   (mirrored or pushed) are then linked, not fetched again, but never served on
 *   their own say-so (the name's visibility would not hold otherwise).
 * - Offline: only what is local is served; nothing dials out.
 */
import { parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { OciError } from '../oci/errors.js';
import type {
  BlobHandle,
  BlobInfo,
  ImageSource,
  ManifestContent,
  ManifestInfo,
  PageRequest,
  ReadOptions,
} from '../oci/image-source.js';
import { isOciError } from '../oci/errors.js';
import type { Logger } from '../oci/logger.js';
import { mediaTypes } from '../oci/media-types.js';
import type { CacheResult, ReadTrace } from '../oci/read-trace.js';
import type { RepoName, Tag } from '../oci/reference.js';
import type { LocalStore } from '../store/local-store.js';
import type { TagRow } from '../store/store-index.js';
import { acceptKey } from './accept-key.js';
import { FillRegistry } from './fill-registry.js';
import type { UpstreamBlobInfo } from './upstream-client.js';
import { NegativeCache } from './negative-cache.js';
import { prefetchBlobs } from './prefetch.js';
import { ReferrerListings } from './referrer-listings.js';
import {
  defaultRevalidationPolicy,
  Revalidations,
  untilAborted,
  type RevalidationOutcome,
  type RevalidationPolicy,
} from './revalidations.js';
import type { Route, Router } from './router.js';
import { SingleFlight } from './single-flight.js';
import { TagListings } from './tag-listings.js';

type MirrorRoute = Extract<Route, { kind: 'mirror' }>;

/**
 * What a background revalidation accepts, whichever client triggered it: the cached tag is served
 * to every client, so the question is where the tag points, not which form one client prefers.
 */
const revalidationAccept: readonly string[] = [
  mediaTypes.ociIndex,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifestList,
  mediaTypes.dockerManifest,
];

export interface ProxyOptions {
  offline?: boolean;
  logger: Logger;
  now?: () => number;
  revalidation?: Partial<RevalidationPolicy>;
  /** Upstream blob downloads at once; more wait their turn (default: fill-registry's defaultMaxConcurrentFills). */
  maxConcurrentFills?: number;
}

export class ProxySource implements ImageSource {
  readonly fills: FillRegistry;
  private readonly manifestFlights = new SingleFlight<ManifestContent | undefined>();
  private readonly blobHeads = new SingleFlight<UpstreamBlobInfo | undefined>();
  private readonly notFound = new NegativeCache();
  private readonly revalidations: Revalidations;
  private readonly tagListings: TagListings;
  private readonly referrerListings: ReferrerListings;
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
    const fillOptions = options.maxConcurrentFills === undefined ? {} : { maxConcurrent: options.maxConcurrentFills };
    this.fills = new FillRegistry(store, options.logger, fillOptions);
    this.revalidations = new Revalidations({ ...defaultRevalidationPolicy, ...options.revalidation }, this.now);
    this.tagListings = new TagListings(this.now);
    this.referrerListings = new ReferrerListings(this.now);
  }

  /** Tag revalidations in flight (at most one per tag). */
  get revalidating(): number {
    return this.revalidations.size;
  }

  /**
   * Shutdown: lets fills in progress finish and be recorded before the index closes; background
   * revalidations stop waiting for the upstream and finish what they were writing.
   */
  async settle(): Promise<void> {
    await Promise.all([this.fills.settle(), this.revalidations.settle()]);
  }

  async openBlob(name: RepoName, digest: Digest, options?: ReadOptions): Promise<BlobHandle | undefined> {
    const route = this.router.resolve(name, options?.namespace);
    if (route.kind === 'local') return this.store.openBlob(name, digest);
    const trace = traceOf(options, route);
    const cached = await this.store.openBlob(route.canonical, digest);
    if (cached === undefined && this.offline) throw offlineMiss('BLOB_UNKNOWN', route, digest, trace);
    if (cached !== undefined) return note(trace, cached, 'hit');
    if (this.isHeldForOthers(route, digest)) {
      if ((await this.confirmBlob(route, digest)) === undefined) return note(trace, undefined, 'hit');
      // Confirmed: the bytes here are the same bytes (same digest), so a link replaces a download.
      if (this.store.contentSize(digest) !== undefined) {
        this.store.linkBlob(route.canonical, digest);
        return note(trace, await this.store.openBlob(route.canonical, digest), 'hit');
      }
      // Still being filled for another name: this request joins that fill below.
    }
    const filled = await this.fills.open(digest, route.canonical, () =>
      route.upstream.client.getBlob(route.remote, digest),
    );
    return note(trace, filled, 'fill');
  }

  async statBlob(name: RepoName, digest: Digest, options?: ReadOptions): Promise<BlobInfo | undefined> {
    const route = this.router.resolve(name, options?.namespace);
    if (route.kind === 'local') return this.store.statBlob(name, digest);
    const trace = traceOf(options, route);
    const cached = await this.store.statBlob(route.canonical, digest);
    if (cached === undefined && this.offline) throw offlineMiss('BLOB_UNKNOWN', route, digest, trace);
    if (cached !== undefined) return note(trace, cached, 'hit');
    const found = await this.confirmBlob(route, digest);
    if (found === undefined) return note(trace, undefined, 'miss');
    const held = this.store.contentSize(digest);
    if (held !== undefined) {
      this.store.linkBlob(route.canonical, digest);
      return note(trace, { digest, size: held }, 'hit');
    }
    note(trace, found, 'miss');
    if (found.size === undefined) {
      throw new OciError('UNAVAILABLE', 'the upstream answered a blob HEAD without a usable Content-Length', {
        status: 502,
        detail: { digest },
      });
    }
    return { digest, size: found.size };
  }

  async getManifest(
    name: RepoName,
    reference: Tag | Digest,
    options?: ReadOptions,
  ): Promise<ManifestContent | undefined> {
    const route = this.router.resolve(name, options?.namespace);
    if (route.kind === 'local') return this.store.getManifest(name, reference);
    const digest = parseDigest(reference);
    // No ReadOptions at all is an in-process reader (the transfer engine), which copies whatever form the
    // manifest has: it accepts them all. An HTTP request always has options; without an Accept header it asks
    // the upstream without one, as before.
    const accept = options === undefined ? revalidationAccept : (options.accept ?? []);
    const trace = traceOf(options, route);
    return digest === undefined
      ? this.manifestByTag(route, reference as Tag, accept, trace)
      : this.manifestByDigest(route, digest, accept, trace);
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
        upstream = await this.tagListings.get(route.canonical, route.upstream.tagTtlMs, async () => {
          try {
            return await route.upstream.client.listTags(route.remote);
          } catch (error) {
            // Inside the shared listing: one warning per failed upstream listing, not one per client.
            this.logger.warn(
              { name: route.canonical, ...describeFailure(error) },
              'upstream tags/list failed; listing local tags only',
            );
            throw error;
          }
        });
      } catch {
        // Logged above; the local tags still answer.
      }
    }
    if (upstream === undefined && local === undefined) return undefined;
    const merged = [...new Set([...(local ?? []), ...(upstream ?? [])])].sort();
    const after = page.last === undefined ? merged : merged.filter((tag) => tag > (page.last ?? ''));
    return page.n === undefined ? after : after.slice(0, page.n);
  }

  /**
   * Referrers of mirrored content: what the mirror holds, merged with what the upstream lists (its
   * referrers API, or the fallback tag), shared and cached like tag listings, the last listing served
   * when the upstream fails (referrer-listings.ts, decision 0014). Offline, or without an answer: local only.
   */
  async listReferrers(
    name: RepoName,
    subject: Digest,
    artifactType?: string,
    options?: ReadOptions,
  ): Promise<Descriptor[]> {
    const route = this.router.resolve(name, options?.namespace);
    if (route.kind === 'local') return this.store.listReferrers(name, subject, artifactType);
    const local = await this.store.listReferrers(route.canonical, subject, artifactType);
    const listUpstream = route.upstream.client.listReferrers?.bind(route.upstream.client);
    if (this.offline || listUpstream === undefined) return local;
    const outcome = await this.referrerListings.get(`${route.canonical}@${subject}`, route.upstream.tagTtlMs, () =>
      listUpstream(route.remote, subject),
    );
    if (outcome.kind === 'none') {
      if (outcome.error !== undefined) {
        this.logger.warn(
          { name: route.canonical, subject, ...describeFailure(outcome.error) },
          'upstream referrers listing failed; listing local referrers only',
        );
      }
      return local;
    }
    const held = new Set(local.map((d) => d.digest));
    const upstream = outcome.referrers.filter(
      (d) => !held.has(d.digest) && (artifactType === undefined || d.artifactType === artifactType),
    );
    return [...local, ...upstream];
  }

  listRepositories(page: PageRequest): Promise<string[]> {
    return this.store.listRepositories(page);
  }

  /** Bytes of the blob are in the store, or on their way, but not for this name. */
  private isHeldForOthers(route: MirrorRoute, digest: Digest): boolean {
    if (this.store.contentSize(digest) !== undefined) return true;
    return this.fills.isFilling(digest) && !this.fills.isFillingFor(digest, route.canonical);
  }

  /** A HEAD to the name's upstream: does it have the blob for this name? Shared and briefly remembered when not. */
  private async confirmBlob(route: MirrorRoute, digest: Digest): Promise<UpstreamBlobInfo | undefined> {
    const key = `blob ${route.canonical}@${digest}`;
    if (this.notFound.has(key, this.now())) return undefined;
    return this.blobHeads.run(key, async () => {
      const found = await route.upstream.client.headBlob(route.remote, digest);
      if (found === undefined) this.notFound.add(key, route.upstream.notFoundTtlMs, this.now());
      return found;
    });
  }

  private async manifestByDigest(
    route: MirrorRoute,
    digest: Digest,
    accept: readonly string[],
    trace: ReadTrace | undefined,
  ): Promise<ManifestContent | undefined> {
    const cached = await this.store.getManifest(route.canonical, digest);
    if (cached === undefined && this.offline) throw offlineMiss('MANIFEST_UNKNOWN', route, digest, trace);
    if (cached !== undefined) return note(trace, cached, 'hit');
    const key = `${route.canonical}@${digest} ${acceptKey(accept)}`;
    if (this.notFound.has(key, this.now())) return note(trace, undefined, 'fill');
    const fetched = await this.manifestFlights.run(key, async () => {
      const fetched = await route.upstream.client.getManifest(route.remote, digest, accept);
      if (fetched === undefined) {
        this.notFound.add(key, route.upstream.notFoundTtlMs, this.now());
        return undefined;
      }
      await this.store.putFetchedManifest(route.canonical, fetched);
      prefetchBlobs(route, { ...fetched, digest }, this.store, this.fills, this.logger);
      return { ...fetched, digest };
    });
    return note(trace, fetched, 'fill');
  }

  private async manifestByTag(
    route: MirrorRoute,
    tag: Tag,
    accept: readonly string[],
    trace: ReadTrace | undefined,
  ): Promise<ManifestContent | undefined> {
    const state = this.store.tagState(route.canonical, tag);
    if (state !== undefined) {
      const served = await this.cachedByTag(route, tag, state);
      // Nothing served: the stored manifest was found corrupt on this read and quarantined (ADR
      // 0009); it is fetched again below, as on a first pull.
      if (served.manifest !== undefined || this.offline) return note(trace, served.manifest, served.how);
    }
    if (this.offline) throw offlineMiss('MANIFEST_UNKNOWN', route, tag, trace);
    // Nothing to serve: this pull waits for the upstream. The answer may depend on Accept.
    const key = `${route.canonical}:${tag} ${acceptKey(accept)}`;
    if (this.notFound.has(key, this.now())) return note(trace, undefined, 'fill');
    const fetched = await this.manifestFlights.run(key, async () => {
      const fetched = await route.upstream.client.getManifest(route.remote, tag, accept);
      if (fetched === undefined) {
        this.notFound.add(key, route.upstream.notFoundTtlMs, this.now());
        return undefined;
      }
      await this.store.putFetchedManifest(route.canonical, fetched, tag);
      prefetchBlobs(route, fetched, this.store, this.fills, this.logger);
      return fetched;
    });
    return note(trace, fetched, 'fill');
  }

  /** The cached tag's manifest: as stored while fresh (or pushed, or offline), else after a revalidation. */
  private async cachedByTag(
    route: MirrorRoute,
    tag: Tag,
    state: TagRow,
  ): Promise<{ manifest: ManifestContent | undefined; how: CacheResult }> {
    const fresh = state.confirmed_at !== null && this.now() - state.confirmed_at < route.upstream.tagTtlMs;
    if (state.source !== 'fetched' || fresh)
      return { manifest: await this.store.getManifest(route.canonical, tag), how: 'hit' };
    if (this.offline) return { manifest: await this.store.getManifest(route.canonical, tag), how: 'stale' };
    const outcome = await this.revalidations.revalidate(`${route.canonical}:${tag}`, (signal) =>
      this.revalidateTag(route, tag, state.digest, signal),
    );
    if (outcome?.kind === 'denied') throw outcome.error;
    // Whatever the revalidation found is in the store; without an answer, this is the cached tag.
    const manifest = await this.store.getManifest(route.canonical, tag);
    return { manifest, how: outcome?.kind === 'done' ? 'revalidated' : 'stale' };
  }

  /**
   * Asks the upstream where a cached tag points now (known: the digest served so far) and records
   * the answer. Runs in the background (revalidations.ts); each failure is one warning, no stack.
   */
  private async revalidateTag(
    route: MirrorRoute,
    tag: Tag,
    known: Digest,
    signal: AbortSignal,
  ): Promise<RevalidationOutcome> {
    const client = route.upstream.client;
    const context = { name: route.canonical, tag, digest: known };
    try {
      // HEAD does not count against Docker Hub's pull limit; GET only if the digest moved.
      const head = await untilAborted(client.headManifest(route.remote, tag, revalidationAccept), signal);
      if (head === undefined) {
        this.logger.info(context, 'tag no longer exists upstream; no longer served');
        await this.dropTag(route, tag, known);
        return { kind: 'done' };
      }
      if (head.digest === known) {
        this.store.confirmTag(route.canonical, tag, this.now());
        return { kind: 'done' };
      }
      const moved =
        (await this.store.getManifest(route.canonical, head.digest)) ??
        (await untilAborted(client.getManifest(route.remote, head.digest, revalidationAccept), signal));
      if (moved === undefined)
        throw new Error(`the upstream named ${head.digest} for the tag but has no such manifest`);
      await this.store.putFetchedManifest(route.canonical, moved, tag);
      this.logger.info({ ...context, moved: head.digest }, 'tag moved upstream');
      return { kind: 'done' };
    } catch (error) {
      if (signal.aborted) return { kind: 'aborted' };
      if (isOciError(error) && error.code === 'DENIED') {
        // Revoked credentials or a repository made private: not an outage, so not stale-if-error.
        this.logger.warn(
          { ...context, ...describeFailure(error) },
          'upstream denied access to a tag; no longer served',
        );
        await this.dropTag(route, tag, known);
        return { kind: 'denied', error };
      }
      this.logger.warn(
        { ...context, ...describeFailure(error) },
        'upstream failed revalidating a tag; serving the cached digest, retrying after a backoff (stale-if-error)',
      );
      return { kind: 'failed' };
    }
  }

  /**
   * Forgets a fetched tag the upstream no longer serves, unless it changed meanwhile. The manifest
   * stays (content by digest); the next pull of the tag asks the upstream again.
   */
  private async dropTag(route: MirrorRoute, tag: Tag, known: Digest): Promise<void> {
    const state = this.store.tagState(route.canonical, tag);
    if (state?.source === 'fetched' && state.digest === known) await this.store.deleteManifest(route.canonical, tag);
  }
}

/** An upstream failure for a warning: its code and message, not its stack (a routine event, logged per attempt). */
function describeFailure(error: unknown): { code?: string; reason: string } {
  if (isOciError(error)) return { code: error.code, reason: error.message };
  return { reason: error instanceof Error ? error.message : String(error) };
}

/** The caller's trace for a mirrored read, with the upstream named (undefined: nobody asked). */
function traceOf(options: ReadOptions | undefined, route: MirrorRoute): ReadTrace | undefined {
  const trace = options?.trace;
  if (trace !== undefined) trace.upstream = route.upstream.host;
  return trace;
}

/** Records how a read was answered (`found`, or not_found when there is nothing) and passes the answer on. */
function note<T>(trace: ReadTrace | undefined, answer: T | undefined, found: CacheResult): T | undefined {
  if (trace !== undefined) trace.cache = answer === undefined ? 'not_found' : found;
  return answer;
}

/**
 * What an offline mirror answers for content it does not hold: the spec's 404 code, with a message
 * that says why (not "unknown to registry": the upstream may well have it).
 */
function offlineMiss(
  code: 'BLOB_UNKNOWN' | 'MANIFEST_UNKNOWN',
  route: MirrorRoute,
  reference: string,
  trace: ReadTrace | undefined,
): OciError {
  note(trace, undefined, 'hit');
  const at = reference.includes(':') ? '@' : ':';
  const what =
    code === 'BLOB_UNKNOWN' ? `blob ${reference} of ${route.canonical}` : `${route.canonical}${at}${reference}`;
  return new OciError(
    code,
    `wharf is offline and ${what} is not cached here; it cannot be fetched from ${route.upstream.host}`,
    { detail: { name: route.canonical, reference: reference.slice(0, 200), offline: true } },
  );
}
