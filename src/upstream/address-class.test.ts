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
