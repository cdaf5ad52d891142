/**
 * Where an upstream's redirects and token realms may send wharf (issue 8, finding 5), checked on
 * URLs: the https → http step down and the realm on plain HTTP need no TLS server to be shown
 * refused here. `lookup` runs the system resolver on `localhost` only (/etc/hosts: no network).
 */
import { lookup, type LookupAddress } from 'node:dns';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { classifyAddress, type AddressClass } from './address-class.js';
import { AddressGuard, type Resolver, forbiddenAddressCode, isAllowedTarget } from './address-guard.js';

const dockerHub = new AddressGuard(new URL('https://registry-1.docker.io'));
const hubFrom = new URL('https://registry-1.docker.io/v2/library/alpine/manifests/3');

describe('refusal for a public upstream', () => {
  it.each([
    'http://127.0.0.1:5000/v2/',
    'http://[::1]:5000/',
    'http://0x7f000001:5000/',
    'http://2130706433:5000/',
    'http://127.1/',
    'http://[::ffff:127.0.0.1]/',
    'http://localhost:5000/',
    'http://foo.localhost/',
    'http://10.0.0.1/',
    'http://172.20.0.1/',
    'http://192.168.0.10/',
    'http://100.64.1.1/',
    'http://[fd00::1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/',
    'http://0.0.0.0/',
    'http://224.0.0.1/',
  ])('refuses %s (from http, so only the address is at fault)', (target) => {
    const from = new URL('http://registry.example/');
    expect(new AddressGuard(from).refusal(new URL(target), from)).toMatch(/address$/);
  });

  it('refuses a step down from https to http, even to a public host or the registry itself', () => {
    expect(dockerHub.refusal(new URL('http://production.cloudflare.docker.com/x'), hubFrom)).toBe(
      'a step down from https to http',
    );
    expect(dockerHub.refusal(new URL('http://registry-1.docker.io/v2/'), hubFrom)).toBe(
      'a step down from https to http',
    );
  });

  it('refuses a plain-http realm of an https upstream, and accepts an https realm on another public host', () => {
    const registry = new URL('https://registry-1.docker.io');
    expect(dockerHub.refusal(new URL('http://auth.docker.io/token'), registry)).toBe('a step down from https to http');
    expect(dockerHub.refusal(new URL('https://auth.docker.io/token'), registry)).toBeUndefined();
    expect(dockerHub.refusal(new URL('https://10.0.0.8/token'), registry)).toBe('a non-public (private) address');
  });

  it('allows CDN redirects, http → https, and names left to the resolver', () => {
    expect(dockerHub.refusal(new URL('https://production.cloudflare.docker.com/x?sig=1'), hubFrom)).toBeUndefined();
    const plain = new AddressGuard(new URL('http://registry.example'));
    expect(plain.refusal(new URL('https://cdn.example/x'), new URL('http://registry.example/v2/'))).toBeUndefined();
    expect(plain.refusal(new URL('http://93.184.215.14/x'), new URL('http://registry.example/v2/'))).toBeUndefined();
  });

  it('refuses other schemes', () => {
    expect(dockerHub.refusal(new URL('file:///etc/passwd'), hubFrom)).toBe('not an http(s) URL');
    expect(dockerHub.refusal(new URL('ftp://cdn.example/x'), hubFrom)).toBe('not an http(s) URL');
  });
});

describe('refusal for upstreams on other networks', () => {
  it('an upstream on loopback may send wharf to loopback, private and public addresses (the tests do)', () => {
    const local = new AddressGuard(new URL('http://127.0.0.1:5000'));
    const from = new URL('http://127.0.0.1:5000/v2/');
    for (const target of [
      'http://127.0.0.1:6000/',
      'http://localhost:6000/',
      'http://[::1]:6000/',
      'http://10.0.0.1/',
    ]) {
      expect(local.refusal(new URL(target), from)).toBeUndefined();
    }
    expect(local.refusal(new URL('http://0.0.0.0:6000/'), from)).toBe('a non-public (unspecified) address');
  });

  it('an upstream on a private network may use private storage, never wharf loopback or link-local', () => {
    const intranet = new AddressGuard(new URL('http://10.0.0.5:5000'));
    const from = new URL('http://10.0.0.5:5000/v2/');
    expect(intranet.refusal(new URL('http://10.0.0.6:9000/bucket/blob'), from)).toBeUndefined();
    expect(intranet.refusal(new URL('http://127.0.0.1:6000/'), from)).toBe('a non-public (loopback) address');
    expect(intranet.refusal(new URL('http://169.254.169.254/'), from)).toBe('a non-public (link-local) address');
  });

  it("the configured upstream's own host is exempt, even when it is treated as public", () => {
    const guard = new AddressGuard(new URL('http://127.0.0.1:5000'), 'public');
    const from = new URL('http://127.0.0.1:5000/v2/');
    expect(guard.refusal(new URL('http://127.0.0.1:5000/storage/blob'), from)).toBeUndefined();
    expect(guard.refusal(new URL('http://127.0.0.1:5001/storage/blob'), from)).toBe('a non-public (loopback) address');
  });

  it('isAllowedTarget: public always, unspecified and multicast never, otherwise the same network', () => {
    const classes: AddressClass[] = ['public', 'private', 'link-local', 'loopback', 'unspecified', 'multicast'];
    const allowed = (upstream: AddressClass): AddressClass[] => classes.filter((t) => isAllowedTarget(t, upstream));
    expect(allowed('public')).toEqual(['public']);
    expect(allowed('private')).toEqual(['public', 'private']);
    expect(allowed('link-local')).toEqual(['public', 'link-local']);
    expect(allowed('loopback')).toEqual(['public', 'private', 'link-local', 'loopback']);
    // An upstream configured on 0.0.0.0 or [::] is this machine: treated like loopback.
    expect(allowed('unspecified')).toEqual(['public', 'private', 'link-local', 'loopback']);
  });
});

describe('lookup', () => {
  function resolve(guard: AddressGuard, hostname: string, all: boolean): Promise<LookupAddress[] | string> {
    return new Promise((done, fail) =>
      guard.lookup(hostname, { all }, (error, address) => (error === null ? done(address) : fail(error))),
    );
  }

  it('refuses a name that resolves to loopback for a public upstream', async () => {
    const guard = new AddressGuard(new URL('https://registry.example'));
    await expect(resolve(guard, 'localhost', true)).rejects.toMatchObject({ code: forbiddenAddressCode });
    await expect(resolve(guard, 'localhost', false)).rejects.toMatchObject({ code: forbiddenAddressCode });
  });

  it('answers in the shape asked for when the address is allowed', async () => {
    const guard = new AddressGuard(new URL('http://127.0.0.1:5000'));
    expect(await resolve(guard, 'localhost', false)).toMatch(/^(127\.|::1$)/);
    const all = await resolve(guard, 'localhost', true);
    expect(Array.isArray(all) && all.length > 0).toBe(true);
  });

  it("learns the upstream's network from what its own name resolves to", async () => {
    // The machine's own name resolves locally (/etc/hosts or nss-myhostname): no network involved.
    const name = hostname().toLowerCase();
    const guard = new AddressGuard(new URL(`http://${name}:5000`));
    expect(guard.upstreamNetwork).toBe('public');
    const addresses = await new Promise<LookupAddress[]>((done, fail) =>
      lookup(name, { all: true }, (error, found) => (error === null ? done(found) : fail(error))),
    );
    const kinds = addresses.map((a) => classifyAddress(a.address));
    // The upstream's own name is never refused, whatever it resolves to.
    expect(await resolve(guard, name, true)).toEqual(addresses);
    expect(guard.upstreamNetwork).toBe(kinds.includes('public') ? 'public' : kinds[0]);
    expect(new AddressGuard(new URL('http://localhost.:5000')).upstreamNetwork).toBe('loopback');
  });
});

describe('lookup, with the answers a resolver gives', () => {
  /** A resolver answering from a table (names it does not know fail as DNS does): no packet leaves the machine. */
  const table =
    (answers: Record<string, string[]>): Resolver =>
    (hostname, _options, callback) => {
      const addresses = answers[hostname];
      if (addresses === undefined) {
        const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        error.code = 'ENOTFOUND';
        callback(error, []);
        return;
      }
      callback(
        null,
        addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      );
    };

  function all(guard: AddressGuard, hostname: string): Promise<string[]> {
    return new Promise((done, fail) =>
      guard.lookup(hostname, { all: true }, (error, found) =>
        error === null ? done((found as unknown as LookupAddress[]).map((a) => a.address)) : fail(error),
      ),
    );
  }

  it('passes a failed lookup on as it is, not as a refusal', async () => {
    const guard = new AddressGuard(new URL('https://registry.example'), undefined, table({}));
    await expect(all(guard, 'cdn.example')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('lets an upstream on a private network reach private storage, and only the allowed answers', async () => {
    const resolver = table({ 'storage.corp': ['127.0.0.1', '10.1.2.3', '169.254.169.254'] });
    const guard = new AddressGuard(new URL('http://10.0.0.5:5000'), undefined, resolver);
    expect(await all(guard, 'storage.corp')).toEqual(['10.1.2.3']);
  });

  it('takes a name answering public and private addresses as public (the stricter reading)', async () => {
    const resolver = table({
      'registry.mixed': ['10.0.0.5', '203.0.114.1'],
      'registry.corp': ['10.0.0.5'],
      'storage.corp': ['10.1.2.3'],
    });
    const mixed = new AddressGuard(new URL('http://registry.mixed:5000'), undefined, resolver);
    expect(await all(mixed, 'registry.mixed')).toEqual(['10.0.0.5', '203.0.114.1']);
    expect(mixed.upstreamNetwork).toBe('public');
    await expect(all(mixed, 'storage.corp')).rejects.toMatchObject({
      code: forbiddenAddressCode,
      message: 'storage.corp resolves only to addresses wharf may not dial',
    });

    const corp = new AddressGuard(new URL('http://registry.corp:5000'), undefined, resolver);
    await all(corp, 'registry.corp');
    expect(corp.upstreamNetwork).toBe('private');
    expect(await all(corp, 'storage.corp')).toEqual(['10.1.2.3']);
  });
});
