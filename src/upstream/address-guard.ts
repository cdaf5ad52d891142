/**
 * @module upstream/address-guard
 * Where an upstream's answers may send wharf. A redirect's Location and a token realm are data
 * from the upstream, not directions: before wharf dials one, the URL must be http(s), must not
 * step down from https to http, and must not point at a non-public address, whether written as
 * an IP literal (checked here on the parsed URL) or as a name that resolves to one (checked in
 * `lookup`, which the upstream's undici Agent connects through, so DNS answers are checked too).
 *
 * The rule, by the network the configured upstream itself is on (its "network"):
 * - a target on a public address is always allowed;
 * - unspecified (0.0.0.0, ::) and multicast targets never are;
 * - an upstream on loopback may send wharf anywhere else: it runs on wharf's own machine, so it
 *   reaches everything wharf reaches (tests, and a registry beside wharf redirecting to its storage);
 * - any other upstream may send wharf only to its own kind of network: a registry on a private
 *   network to storage on that private network, never to wharf's loopback or to link-local
 *   (cloud metadata); a public upstream only to public addresses.
 * The configured upstream's own host is exempt: the operator chose it. Its network is its IP
 * literal's class, loopback for localhost names, and for any other name what it last resolved to
 * (before any lookup, and with a dispatcher handed in, public: the strict choice).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { classifyAddress, classifyHost, type AddressClass } from './address-class.js';

/** The error code `lookup` fails with; UpstreamHttp turns it into a 502. */
// Stryker disable next-line StringLiteral: equivalent, every user compares with this constant, never with its text.
export const forbiddenAddressCode = 'EWHARF_FORBIDDEN_ADDRESS';

/** dns.lookup with `all: true`, the one resolver used in production; the unit tests hand in answers of their own. */
export type Resolver = (
  hostname: string,
  options: LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export function isAllowedTarget(target: AddressClass, upstream: AddressClass): boolean {
  if (target === 'public') return true;
  if (target === 'unspecified' || target === 'multicast') return false;
  if (upstream === 'loopback' || upstream === 'unspecified') return true;
  return target === upstream;
}

/** A resolver's answer is an IP address; anything else would be treated as reserved (refused). */
function classOfAnswer(address: string): AddressClass {
  // Stryker disable next-line LogicalOperator,StringLiteral: unreachable, a resolver answers IP addresses only.
  return classifyAddress(address) ?? 'reserved';
}

export class AddressGuard {
  private learned: AddressClass | undefined;
  private readonly literal: AddressClass | undefined;

  /**
   * `upstream` is the configured upstream URL; `network`, when given, overrides what its address
   * says (tests give a loopback upstream the 'public' treatment a real one gets).
   */
  constructor(
    private readonly upstream: URL,
    private readonly network?: AddressClass,
    private readonly resolve: Resolver = dnsLookup,
  ) {
    this.literal = classifyHost(upstream.hostname);
  }

  /** The network the upstream is taken to be on, which decides where it may send wharf. */
  get upstreamNetwork(): AddressClass {
    return this.network ?? this.literal ?? this.learned ?? 'public';
  }

  /**
   * Why wharf must not request `target`, or undefined when it may. `from` is the URL whose answer
   * named it (the previous hop of a redirect, the registry for a token realm); undefined for a
   * URL wharf built itself from the configuration.
   */
  refusal(target: URL, from: URL | undefined): string | undefined {
    if (target.protocol !== 'https:' && target.protocol !== 'http:') return 'not an http(s) URL';
    if (from?.protocol === 'https:' && target.protocol === 'http:') return 'a step down from https to http';
    if (target.host === this.upstream.host) return undefined;
    const kind = classifyHost(target.hostname);
    if (kind !== undefined && !isAllowedTarget(kind, this.upstreamNetwork)) return `a non-public (${kind}) address`;
    return undefined;
  }

  /** A net.connect `lookup` that drops non-public answers for every name but the upstream's own. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const all: LookupAllOptions = { ...options, all: true };
    this.resolve(hostname, all, (error, addresses) => {
      // Stryker disable next-line ArrayDeclaration: equivalent, net.connect ignores the addresses of a failed lookup.
      if (error !== null) return callback(error, []);
      const own = hostname === this.upstream.hostname;
      if (own) this.learn(addresses);
      const allowed = own
        ? addresses
        : addresses.filter((a) => isAllowedTarget(classOfAnswer(a.address), this.upstreamNetwork));
      const first = allowed[0];
      if (first === undefined) {
        const refused: NodeJS.ErrnoException = new Error(`${hostname} resolves only to addresses wharf may not dial`);
        refused.code = forbiddenAddressCode;
        // Stryker disable next-line ArrayDeclaration: equivalent, as above.
        return callback(refused, []);
      }
      if (options.all === true) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };

  /** Mixed answers count as public: the stricter reading of a name that is partly public. */
  private learn(addresses: readonly LookupAddress[]): void {
    const kinds = addresses.map((a) => classOfAnswer(a.address));
    this.learned = kinds.includes('public') ? 'public' : kinds[0];
  }
}
