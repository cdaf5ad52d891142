/**
 * @module test/conformance/target
 * The registry under test: CONFORMANCE_URL when set (any registry, e.g. CNCF distribution),
 * otherwise a fresh in-process wharf from test/support/wharf.ts. The wharf module is imported
 * lazily so an external run does not need the server to build.
 */
import { createHash } from 'node:crypto';

export interface ConformanceTarget {
  /** Base URL without a trailing slash. */
  url: string;
  kind: 'wharf' | 'external';
  close(): Promise<void>;
}

/** Hook timeout for starting and stopping the target. */
export const TARGET_HOOK_TIMEOUT_MS = 60_000;

/** `sparseManifests`: start wharf with registry.sparseManifests (the main suite's sparse data set). */
export async function startTarget(options: { sparseManifests?: boolean } = {}): Promise<ConformanceTarget> {
  const external = process.env['CONFORMANCE_URL'];
  if (external !== undefined && external !== '') {
    return { url: external.replace(/\/+$/, ''), kind: 'external', close: async () => {} };
  }
  const { startWharf } = await import('../support/wharf.js');
  const handle = await startWharf({ sparseManifests: options.sparseManifests });
  return { url: handle.url, kind: 'wharf', close: () => handle.close() };
}

export type DigestAlgorithm = 'sha256' | 'sha512';

export function digestOf(bytes: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
