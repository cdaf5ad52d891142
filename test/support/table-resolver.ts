/**
 * @module test/support/table-resolver
 * A resolver for the address guard that answers from a table of made-up names (`upstream.test`,
 * `cdn.test`: the .test domain is reserved, RFC 6761) and records what it was asked. A name it does
 * not know fails as DNS would (ENOTFOUND): nothing reaches the system resolver, so no query leaves
 * the machine.
 */
import type { Resolver } from '../../src/upstream/address-guard.js';

export interface TableResolver {
  resolve: Resolver;
  /** Every name asked, in order. */
  asked: string[];
}

export function tableResolver(answers: Record<string, string[]>): TableResolver {
  const asked: string[] = [];
  const resolve: Resolver = (hostname, _options, callback) => {
    asked.push(hostname);
    const addresses = answers[hostname];
    // Answered on a later turn, as dns.lookup does: net.connect expects its lookup to be asynchronous.
    setImmediate(() => {
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
    });
  };
  return { resolve, asked };
}
