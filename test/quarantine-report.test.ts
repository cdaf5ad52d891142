/**
 * The line `verify --repair` and serve's log give per quarantined blob (cli/quarantine-report.ts,
 * round 11c): a blob is fetched again by itself only when EVERY repository holding it is a mirrored
 * one and no pushed or imported tag reaches it; one also held by a local repository is lost until
 * pushed again, and must be said so (an `error:` line, exit 1), not "repaired".
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeQuarantine, mirroredNameTest } from '../src/cli/quarantine-report.js';
import type { Digest } from '../src/oci/digest.js';
import type { BlobHolders } from '../src/store/blob-holders.js';
import type { QuarantineResult } from '../src/store/quarantine.js';

const dataDir = '/srv/wharf';
const digest = `sha256:${'ab'.repeat(32)}` as Digest;
const mirror = 'registry.example.test';
const isMirrored = mirroredNameTest([mirror]);

function result(holders: BlobHolders): QuarantineResult {
  return {
    digest,
    reason: 'digest-mismatch',
    foundBy: 'repair',
    movedTo: join(dataDir, 'quarantine', 'x'),
    holders,
    droppedTags: [],
    droppedManifests: [],
  };
}

describe('describeQuarantine', () => {
  const head = `blob ${digest}: its bytes do not match its digest; moved to quarantine/x`;

  it('a blob held by a mirrored and a local repository is lost, naming both', () => {
    const line = describeQuarantine(
      result({
        links: [`${mirror}/team/app`, 'team/app'],
        manifests: [],
        tags: [{ repository: `${mirror}/team/app`, tag: 'v1', source: 'fetched' }],
      }),
      dataDir,
      isMirrored,
    );
    expect(line).toEqual({
      kind: 'lost',
      text:
        `${head} (in ${mirror}/team/app, team/app); pushed or imported content no upstream has: push or import it ` +
        `again; pulls of ${mirror}/team/app:v1 (fetched) fail until then`,
    });
  });

  it('a blob only mirrored repositories hold, reached by fetched tags, comes back by itself', () => {
    const line = describeQuarantine(
      result({
        links: [`${mirror}/team/app`],
        manifests: [],
        tags: [{ repository: `${mirror}/team/app`, tag: 'v1', source: 'fetched' }],
      }),
      dataDir,
      isMirrored,
    );
    expect(line).toEqual({
      kind: 'refetchable',
      text: `${head} (in ${mirror}/team/app); fetched again from the upstream on the next pull`,
    });
  });

  it('a blob an imported tag of a mirrored name reaches is lost: no upstream gives it back', () => {
    const line = describeQuarantine(
      result({
        links: [`${mirror}/team/app`],
        manifests: [],
        tags: [{ repository: `${mirror}/team/app`, tag: 'v2', source: 'imported' }],
      }),
      dataDir,
      isMirrored,
    );
    expect(line.kind).toBe('lost');
    expect(line.text).toContain(`; pulls of ${mirror}/team/app:v2 (imported) fail until then`);
  });

  it('a blob no repository holds is unreferenced', () => {
    expect(describeQuarantine(result({ links: [], manifests: [], tags: [] }), dataDir, isMirrored)).toEqual({
      kind: 'unreferenced',
      text: `${head}; no image refers to it`,
    });
  });
});

describe('mirroredNameTest', () => {
  it('is a mirrored name only under a configured host and a slash', () => {
    expect(isMirrored(`${mirror}/team/app`)).toBe(true);
    expect(isMirrored(`${mirror}x/team/app`)).toBe(false);
    expect(isMirrored('team/app')).toBe(false);
  });
});
