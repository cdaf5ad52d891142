/**
 * @module cli/quarantine-report
 * One line per quarantined blob, for `verify --repair` and for serve's log: what
 * went, where the bytes are now, and whether the blob comes back by itself (it
 * was fetched from an upstream: the next pull fetches it again) or someone must
 * push it again (pushed or imported content, which no upstream has).
 */
import { relative } from 'node:path';
import { hostComponent } from '../proxy/router.js';
import { holderRepositories } from '../store/blob-holders.js';
import type { QuarantineResult } from '../store/quarantine.js';

export type QuarantineKind = 'refetchable' | 'lost' | 'unreferenced';

export interface QuarantineLine {
  kind: QuarantineKind;
  text: string;
}

/** Whether a stored name is a mirrored one: it starts with a configured upstream's host component. */
export function mirroredNameTest(hosts: readonly string[]): (name: string) => boolean {
  const prefixes = hosts.map((host) => `${hostComponent(host)}/`);
  return (name) => prefixes.some((prefix) => name.startsWith(prefix));
}

const reasons: Record<QuarantineResult['reason'], string> = {
  'digest-mismatch': 'its bytes do not match its digest',
  'size-mismatch': 'its file has the wrong size',
  'missing-file': 'its file is missing',
};

export function describeQuarantine(
  result: QuarantineResult,
  dataDir: string,
  isMirrored: (name: string) => boolean,
): QuarantineLine {
  const { holders } = result;
  const repositories = holderRepositories(holders);
  const pinned = holders.tags.filter((t) => t.source === 'pushed' || t.source === 'imported');
  const kind: QuarantineKind =
    repositories.length === 0
      ? 'unreferenced'
      : pinned.length === 0 && repositories.every(isMirrored)
        ? 'refetchable'
        : 'lost';
  const moved =
    result.movedTo === undefined ? 'its index rows dropped' : `moved to ${relative(dataDir, result.movedTo)}`;
  const head = `blob ${result.digest}: ${reasons[result.reason]}; ${moved}`;
  const where = repositories.length === 0 ? '' : ` (in ${repositories.join(', ')})`;
  const tags = holders.tags.map((t) => `${t.repository}:${t.tag} (${t.source})`).join(', ');
  const dropped =
    result.droppedTags.length === 0 ? '' : `; tags removed with the manifest it held: ${result.droppedTags.join(', ')}`;
  if (kind === 'unreferenced') return { kind, text: `${head}; no image refers to it` };
  if (kind === 'refetchable') {
    return { kind, text: `${head}${where}; fetched again from the upstream on the next pull${dropped}` };
  }
  const affected = tags === '' ? '' : `; pulls of ${tags} fail until then`;
  return {
    kind,
    text: `${head}${where}; pushed or imported content no upstream has: push or import it again${affected}${dropped}`,
  };
}
