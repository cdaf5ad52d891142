/**
 * The registry API handlers' main paths where round 13a of the planted-bug audit found no test
 * watching, against a real in-process server: a monolithic push (POST ?digest=) refused by its
 * declared size before its body is read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerToHeadersOnly, sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

let wharf: WharfHandle;
beforeAll(async () => {
  wharf = await startWharf({ lifecycle: { maxSizeBytes: 64 * 1024 } });
});
afterAll(async () => wharf?.close());

describe('a monolithic push past store.maxSize', () => {
  // The declared Content-Length goes to the store: it refuses 507 before a byte is read, so the
  // client learns it at once instead of after uploading the whole layer.
  it('is refused 507 from its Content-Length alone, before the body is sent', async () => {
    // Headers only: the body never comes, so only the declared length can answer.
    const answer = answerToHeadersOnly(
      `${wharf.url}/v2/edge13/big/blobs/uploads/?digest=${sha256('never sent')}`,
      'POST',
      {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(1024 * 1024),
      },
    );
    const { status, body } = await withDeadline(answer, 20_000, 'the 507 answer');
    expect(status).toBe(507);
    expect(JSON.parse(body)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
  });
});
