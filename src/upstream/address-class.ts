/**
 * @module upstream/address-class
 * What kind of network an IP address (or a URL's host) is on: public, or one of the ranges a
 * server-side fetch must not be steered to (loopback, private, link-local, …). Ranges from the IANA
 * special-purpose registries (RFC 6890 and its updates). The npm package ipaddr.js would be the library
 * choice; it is not a dependency, and this is all the guard needs.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type AddressClass =
  /** Globally routable: what a public registry and its CDN are on. */
  | 'public'
  /** RFC 1918, 100.64/10 (CGNAT, RFC 6598), fc00::/7 (ULA), fec0::/10 (old site-local), 64:ff9b:1::/48. */
  | 'private'
  /** 169.254/16 and fe80::/10: cloud metadata services live here. */
  | 'link-local'
  /** 127/8, ::1, and the names localhost and *.localhost (RFC 6761 §6.3). */
  | 'loopback'
  /** 0/8 and ::. Linux connects 0.0.0.0 to the local host. */
  | 'unspecified'
  | 'multicast'
  /** Documentation, benchmarking, broadcast, reserved and unallocated ranges: nothing to fetch there. */
  | 'reserved';

/** [first address as a 32-bit number, prefix length, class]; the first match wins. */
const ipv4Ranges: readonly (readonly [number, number, AddressClass])[] = [
  // Stryker disable next-line StringLiteral: equivalent, ipv4('') is 0 too.
  [ipv4('0.0.0.0'), 8, 'unspecified'],
  [ipv4('10.0.0.0'), 8, 'private'],
  [ipv4('100.64.0.0'), 10, 'private'],
  [ipv4('127.0.0.0'), 8, 'loopback'],
  [ipv4('169.254.0.0'), 16, 'link-local'],
  [ipv4('172.16.0.0'), 12, 'private'],
  [ipv4('192.0.0.0'), 24, 'reserved'],
  [ipv4('192.0.2.0'), 24, 'reserved'],
  [ipv4('192.88.99.0'), 24, 'reserved'],
  [ipv4('192.168.0.0'), 16, 'private'],
  [ipv4('198.18.0.0'), 15, 'reserved'],
  [ipv4('198.51.100.0'), 24, 'reserved'],
  [ipv4('203.0.113.0'), 24, 'reserved'],
  [ipv4('224.0.0.0'), 4, 'multicast'],
  [ipv4('240.0.0.0'), 4, 'reserved'],
];

function ipv4(text: string): number {
  return text.split('.').reduce((value, part) => value * 256 + Number(part), 0);
}

function classifyIpv4(value: number): AddressClass {
  for (const [first, prefix, kind] of ipv4Ranges) {
    // Math.trunc instead of >>> : a /0..32 mask on numbers up to 2^32 stays exact in doubles.
    const size = 2 ** (32 - prefix);
    if (Math.trunc(value / size) === Math.trunc(first / size)) return kind;
  }
  return 'public';
}

/** The eight 16-bit groups of a valid IPv6 address (a zone such as %eth0 removed), an embedded IPv4 tail expanded. */
function ipv6Groups(text: string): number[] {
  // Stryker disable next-line StringLiteral: unreachable, split always yields a first element.
  let address = text.split('%')[0] ?? '';
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1];
  if (tail !== undefined) {
    const value = ipv4(tail);
    address = `${address.slice(0, -tail.length)}${Math.trunc(value / 65536).toString(16)}:${(value % 65536).toString(16)}`;
  }
  // Stryker disable next-line StringLiteral: unreachable, as above.
  const [head = '', rest] = address.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function classifyIpv6(groups: readonly number[]): AddressClass {
  const g = (i: number): number => groups[i] ?? 0;
  const embeddedIpv4 = (i: number): number => g(i) * 65536 + g(i + 1);
  const zeros = (from: number, to: number): boolean => groups.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return 'unspecified';
  if (zeros(0, 7) && g(7) === 1) return 'loopback';
  // ::ffff:a.b.c.d (IPv4-mapped) is the IPv4 address itself to the socket layer.
  if (zeros(0, 5) && g(5) === 0xffff) return classifyIpv4(embeddedIpv4(6));
  // ::a.b.c.d (deprecated IPv4-compatible) and ::ffff:0:a.b.c.d (SIIT) are nothing public: they
  // fall through to 'reserved' below, like everything else outside 2000::/3.
  // NAT64 (RFC 6052 well-known prefix) and 6to4 reach the IPv4 address they embed.
  if (g(0) === 0x64 && g(1) === 0xff9b && zeros(2, 6)) return classifyIpv4(embeddedIpv4(6));
  if (g(0) === 0x64 && g(1) === 0xff9b && g(2) === 1) return 'private';
  if (g(0) === 0x2002) return classifyIpv4(embeddedIpv4(1));
  if ((g(0) & 0xfe00) === 0xfc00) return 'private';
  if ((g(0) & 0xffc0) === 0xfe80) return 'link-local';
  if ((g(0) & 0xffc0) === 0xfec0) return 'private';
  if ((g(0) & 0xff00) === 0xff00) return 'multicast';
  // Teredo (2001::/32) hides a client's IPv4; 2001:db8::/32 is documentation; 2001:2::/48 benchmarking.
  if (g(0) === 0x2001 && (g(1) === 0 || g(1) === 0xdb8 || (g(1) === 2 && g(2) === 0))) return 'reserved';
  // Everything routable today is in 2000::/3; outside it (100::/64 discard included) is reserved.
  return (g(0) & 0xe000) === 0x2000 ? 'public' : 'reserved';
}

/** The class of an IP address as the socket layer sees it ('::ffff:127.0.0.1' included); undefined if `text` is not one. */
export function classifyAddress(text: string): AddressClass | undefined {
  if (isIPv4(text)) return classifyIpv4(ipv4(text));
  if (isIPv6(text)) return classifyIpv6(ipv6Groups(text));
  return undefined;
}

/** `localhost`, `*.localhost`, with or without the root's trailing dot (RFC 6761 §6.3: always loopback). */
export function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * The class of a WHATWG URL's `hostname` (already normalised by the parser: 0x7f000001,
 * 2130706433 and 127.1 all arrive as 127.0.0.1; IPv6 in brackets), or of a localhost name;
 * undefined for any other name, whose class only DNS can tell.
 */
export function classifyHost(hostname: string): AddressClass | undefined {
  if (hostname.startsWith('[') && hostname.endsWith(']')) return classifyAddress(hostname.slice(1, -1));
  if (isLocalhostName(hostname)) return 'loopback';
  return classifyAddress(hostname);
}
