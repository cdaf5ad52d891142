/**
 * ReferrerListings (decision 0014), round 6 of the hand-planted audit (docs/mutation-testing.md): a
 * listing is kept at most 30 s whatever the tag TTL; a failure serves the last listing and waits 30 s
 * before asking again; a refusal (DENIED) forgets the last listing instead of serving it on.
 */
import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { referrersRetryMs, ReferrerListings } from './referrer-listings.js';

const signature: Descriptor = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${'a'.repeat(64)}` as Digest,
  size: 100,
};

/** An upstream listing that answers what `next` says, counting its calls. */
function scripted(): { list: () => Promise<Descriptor[]>; calls: () => number; next: (error?: Error) => void } {
  let calls = 0;
  let failure: Error | undefined;
  return {
    list: () => {
      calls++;
      return failure === undefined ? Promise.resolve([signature]) : Promise.reject(failure);
    },
    calls: () => calls,
    next: (error) => {
      failure = error;
    },
  };
}

describe('ReferrerListings', () => {
  it('keeps a listing 30 s under a 5 min tag TTL, and asks again after', async () => {
    let now = 1_000_000;
    const listings = new ReferrerListings(() => now);
    const upstream = scripted();
    expect(await listings.get('r@s', 300_000, upstream.list)).toEqual({ kind: 'fresh', referrers: [signature] });
    now += 29_999;
    await listings.get('r@s', 300_000, upstream.list);
    expect(upstream.calls()).toBe(1);
    now += 1;
    await listings.get('r@s', 300_000, upstream.list);
    expect(upstream.calls()).toBe(2);
  });

  it('serves the last listing when the upstream fails, and asks again only after the retry delay', async () => {
    let now = 0;
    const listings = new ReferrerListings(() => now);
    const upstream = scripted();
    await listings.get('r@s', 0, upstream.list);
    upstream.next(new OciError('UNAVAILABLE', 'outage'));
    expect(await listings.get('r@s', 0, upstream.list)).toEqual({ kind: 'stale', referrers: [signature] });
    expect(referrersRetryMs).toBe(30_000);
    now += referrersRetryMs - 1;
    expect(await listings.get('r@s', 0, upstream.list)).toEqual({ kind: 'fresh', referrers: [signature] });
    expect(upstream.calls()).toBe(2);
    now += 1;
    expect(await listings.get('r@s', 0, upstream.list)).toEqual({ kind: 'stale', referrers: [signature] });
    expect(upstream.calls()).toBe(3);
  });

  it('forgets the last listing when the upstream refuses access (DENIED), and never serves it on', async () => {
    const listings = new ReferrerListings(() => 0);
    const upstream = scripted();
    await listings.get('r@s', 0, upstream.list);
    const denied = new OciError('DENIED', 'access revoked', { status: 403 });
    upstream.next(denied);
    expect(await listings.get('r@s', 0, upstream.list)).toEqual({ kind: 'none', error: denied });
    // Nothing kept: the next request asks again, and gets nothing from before either.
    upstream.next(new OciError('UNAVAILABLE', 'outage'));
    const after = await listings.get('r@s', 0, upstream.list);
    expect(after.kind).toBe('none');
    expect(upstream.calls()).toBe(3);
  });
});
