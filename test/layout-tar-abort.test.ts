/**
 * An aborted tar export (`wharf export -o -`, `wharf copy … oci-archive:`) must not end as a well-formed
 * tar (round 8c of planted bugs): a reader downstream (docker load, tar, wharf import from a pipe) must
 * see a cut, never a shorter archive with its end-of-archive blocks. Real parts: the OciLayoutWriter
 * writing into a stream.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { OciLayoutWriter } from '../src/archive/oci-layout-writer.js';
import type { Digest } from '../src/oci/digest.js';
import { randomBytesFor, sha256Digest } from './support/make-image.js';

describe('an aborted tar export', () => {
  it('leaves a cut tar, not one that ends cleanly without the rest', async () => {
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    const writer = new OciLayoutWriter(out);
    const bytes = randomBytesFor('layout-tar-abort', 4096);
    await writer.writeBlob({ digest: sha256Digest(bytes) as Digest, size: bytes.length }, [bytes]);
    await writer.abort(new Error('a later blob failed'));
    const written = Buffer.concat(chunks);
    // What went out before the failure is there (oci-layout, the blob), whole entries of 512-byte blocks;
    // the archive's end (two zero blocks, which finalize() writes) is not.
    expect(written.byteLength).toBeGreaterThanOrEqual(bytes.length + 4 * 512);
    expect(written.byteLength % 512).toBe(0);
    expect(written.subarray(-1024).equals(Buffer.alloc(1024))).toBe(false);
  });
});
