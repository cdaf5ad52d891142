/**
 * The address classifier, on the spellings a hostile Location or realm may use: the WHATWG URL
 * parser normalises IPv4 forms to dotted quads and IPv6 to compressed hex, so the classes are
 * checked on the parsed URL's hostname, as the guard sees it.
 */
import { describe, expect, it } from 'vitest';
import { classifyAddress, classifyHost, type AddressClass } from './address-class.js';

describe('classifyHost on parsed URLs', () => {
  const cases: [string, AddressClass | undefined][] = [
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://0x7f000001/', 'loopback'],
    ['http://2130706433/', 'loopback'],
    ['http://0177.0.0.1/', 'loopback'],
    ['http://127.255.255.254/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[0:0:0:0:0:0:0:1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:7f00:1]/', 'loopback'],
    ['http://localhost/', 'loopback'],
    ['http://LocalHost./', 'loopback'],
    ['http://foo.localhost/', 'loopback'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://10.1.2.3/', 'private'],
    ['http://172.16.0.1/', 'private'],
    ['http://172.31.255.255/', 'private'],
    ['http://192.168.1.1/', 'private'],
    ['http://100.64.0.1/', 'private'],
    ['http://100.127.255.255/', 'private'],
    ['http://[fc00::1]/', 'private'],
    ['http://[fd12:3456::1]/', 'private'],
    ['http://[::ffff:10.0.0.1]/', 'private'],
    ['http://169.254.169.254/', 'link-local'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://[ff02::1]/', 'multicast'],
    ['http://255.255.255.255/', 'reserved'],
    ['http://192.0.2.1/', 'reserved'],
    ['http://[2001:db8::1]/', 'reserved'],
    ['http://[::127.0.0.1]/', 'reserved'],
    ['http://[64:ff9b::7f00:1]/', 'loopback'],
    ['http://[2002:7f00:1::]/', 'loopback'],
    ['http://[2002:0808:0808::]/', 'public'],
    ['http://8.8.8.8/', 'public'],
    ['http://172.32.0.1/', 'public'],
    ['http://100.128.0.1/', 'public'],
    ['http://[2606:4700::1111]/', 'public'],
    ['http://[64:ff9b::808:808]/', 'public'],
    ['http://registry-1.docker.io/', undefined],
    ['http://localhost.example.com/', undefined],
  ];
  it.each(cases)('%s → %s', (url, expected) => {
    expect(classifyHost(new URL(url).hostname)).toBe(expected);
  });
});

describe('classifyAddress on what DNS answers', () => {
  it('reads IPv4-mapped IPv6 in dotted form and drops a zone', () => {
    expect(classifyAddress('::ffff:127.0.0.1')).toBe('loopback');
    expect(classifyAddress('::ffff:192.168.0.1')).toBe('private');
    expect(classifyAddress('fe80::1%eth0')).toBe('link-local');
    expect(classifyAddress('93.184.215.14')).toBe('public');
  });

  it('answers undefined for anything that is not an IP address', () => {
    expect(classifyAddress('localhost')).toBeUndefined();
    expect(classifyAddress('127.1')).toBeUndefined();
    expect(classifyAddress('')).toBeUndefined();
  });
});

// Issue 13 (mutation testing): one address inside and one just outside each special range, so a
// range dropped, mislabelled or mis-sized changes an answer here.
describe('classifyAddress, range by range', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.255.255.255', 'unspecified'],
    ['1.0.0.0', 'public'],
    ['192.0.0.8', 'reserved'],
    ['192.0.1.0', 'public'],
    ['192.0.2.1', 'reserved'],
    ['192.88.99.1', 'reserved'],
    ['192.88.100.1', 'public'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['198.20.0.0', 'public'],
    ['198.17.255.255', 'public'],
    ['198.51.100.7', 'reserved'],
    ['198.51.101.0', 'public'],
    ['203.0.113.9', 'reserved'],
    ['203.0.114.0', 'public'],
    ['100.63.255.255', 'public'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['100.128.0.0', 'public'],
    ['255.255.255.255', 'reserved'],
    ['224.0.0.1', 'multicast'],
  ] as const)('IPv4 %s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each([
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::2', 'reserved'],
    ['1::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:7f00:1', 'loopback'],
    ['::8.8.8.8', 'reserved'],
    ['::ffff:0:8.8.8.8', 'reserved'],
    ['::1:ffff:0:808:808', 'reserved'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::a00:1', 'private'],
    ['64:ff9b:1::1', 'private'],
    // Each part of the 64:ff9b:1::/48 rule: a different first, second or third group is not in it.
    ['2001:ff9b:1::1', 'public'],
    ['64:1:1::1', 'reserved'],
    ['64:ff9b:2::1', 'reserved'],
    // The IPv4 tail parsed whole: octets of more than one digit, the low 16 bits counted.
    ['::ffff:10.20.30.40', 'private'],
    ['::ffff:8.8.100.200', 'public'],
    ['2002:c000:0201::1', 'reserved'],
    ['64:ff9a::1', 'reserved'],
    ['65:ff9b::8.8.8.8', 'reserved'],
    ['64:ff9b:0:0:0:1:808:808', 'reserved'],
    ['2002:0a00:0001::1', 'private'],
    ['2002:0808:0808::1', 'public'],
    ['fc00::1', 'private'],
    ['fdff::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'private'],
    ['feff::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001::1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2001:2::1', 'reserved'],
    ['2001:2:1::1', 'public'],
    ['2001:3::1', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['2600::1', 'public'],
    ['3fff::1', 'public'],
    ['4000::1', 'reserved'],
    ['1fff::1', 'reserved'],
    ['100::1', 'reserved'],
  ] as const)('IPv6 %s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it('is undefined for names and malformed addresses', () => {
    for (const text of ['localhost', 'example.com', '1.2.3', '::g', '']) expect(classifyAddress(text)).toBeUndefined();
  });
});

describe('classifyHost', () => {
  it('unwraps bracketed IPv6 only when both brackets are there', () => {
    expect(classifyHost('[::1]')).toBe('loopback');
    expect(classifyHost('[fe80::1]')).toBe('link-local');
    expect(classifyHost('[::1')).toBeUndefined();
    expect(classifyHost('::1]')).toBeUndefined();
    expect(classifyHost('x::1]')).toBeUndefined();
    expect(classifyHost('10.0.0.1')).toBe('private');
    expect(classifyHost('LOCALHOST.')).toBe('loopback');
    expect(classifyHost('registry.example.com')).toBeUndefined();
  });
});
