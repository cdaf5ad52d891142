/**
 * @module store/repair
 * `wharf verify --repair`: acts on verify's findings about blob files. A file
 * whose bytes do not match (digest or size) is quarantined; a row whose file is
 * missing is dropped (quarantine.ts: both drop every row saying the store holds
 * the blob). Everything else verify finds (a corrupt index, a broken reference,
 * an unreadable file) is left for the operator and stays a problem.
 * The caller holds the data-dir lock: nothing else writes meanwhile.
 */
import type { Digest } from '../oci/digest.js';
import type { LocalStore } from './local-store.js';
import type { CorruptionReason, QuarantineResult } from './quarantine.js';
import type { VerifyProblem } from './verify.js';

export interface RepairOutcome {
  /** One per blob acted on. */
  quarantined: QuarantineResult[];
  /** Findings repair does not act on; still problems. */
  remaining: VerifyProblem[];
}

const repairable = new Set<string>(['missing-file', 'size-mismatch', 'digest-mismatch']);

export async function repairStore(store: LocalStore, problems: readonly VerifyProblem[]): Promise<RepairOutcome> {
  const outcome: RepairOutcome = { quarantined: [], remaining: [] };
  const done = new Set<Digest>();
  for (const problem of problems) {
    const digest = problem.digest;
    if (digest === undefined || !repairable.has(problem.kind)) {
      outcome.remaining.push(problem);
      continue;
    }
    if (done.has(digest)) continue;
    done.add(digest);
    const result = await store.quarantineBlob(digest, problem.kind as CorruptionReason, undefined, 'repair');
    if (result === undefined) outcome.remaining.push(problem);
    else outcome.quarantined.push(result);
  }
  return outcome;
}
