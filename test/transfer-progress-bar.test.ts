/**
 * The progress bar `wharf copy`, export and import draw on a terminal (src/cli/transfer-progress.ts),
 * rendered into a stream that says it is a TTY (round 9b of planted bugs): a blob reports its
 * progress as a running total (`done`), so the bar adds only what is new since that blob's last
 * report; a blob's end and a skipped blob bring it to the blob's size. The bytes drawn at the end are
 * the bytes of the copy, never more.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgressView } from '../src/cli/transfer-progress.js';
import type { Digest } from '../src/oci/digest.js';

const mib = 1024 * 1024;
const image = 'registry.example.test/team/app:v1';
const big = `sha256:${'b'.repeat(64)}` as Digest;
const small = `sha256:${'a'.repeat(64)}` as Digest;

/** A stream a terminal would be: cli-progress draws only on a TTY. */
function terminal(): { stream: PassThrough; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 200, rows: 40 });
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return {
    stream,
    text: () =>
      Buffer.concat(chunks)
        .toString('utf8')
        .replace(/\u001b\[[0-9;?]*[A-Za-z]|\u001b[78]/g, ''),
  };
}

describe('the progress bar', () => {
  it('counts each blob once, whatever the number of progress reports it sent', () => {
    const { stream, text } = terminal();
    const view = createProgressView('bar', stream);
    view.onEvent({ type: 'image-start', image, digest: big, blobs: 2, bytes: 10 * mib + mib });
    view.onEvent({ type: 'blob-start', image, digest: big, size: 10 * mib });
    view.onEvent({ type: 'blob-progress', image, digest: big, size: 10 * mib, done: 4 * mib });
    view.onEvent({ type: 'blob-progress', image, digest: big, size: 10 * mib, done: 8 * mib });
    view.onEvent({ type: 'blob-done', image, digest: big, size: 10 * mib });
    view.onEvent({ type: 'blob-skipped', image, digest: small, size: mib });
    view.onEvent({ type: 'image-done', image, digest: big, bytes: 11 * mib });
    view.stop();
    const lines = text()
      .split(/[\r\n]/)
      .filter((line) => line.includes(' of '));
    expect(lines.at(-1)).toContain('100% | 11.0 MiB of 11.0 MiB');
    for (const line of lines) expect(line).not.toMatch(/\| (1[2-9]|[2-9]\d)\.\d MiB of/);
  });

  it('keeps a total set before any event (an archive file) when images start', () => {
    const { stream, text } = terminal();
    const view = createProgressView('bar', stream);
    view.setTotal(4 * mib);
    view.onEvent({ type: 'image-start', image, digest: big, blobs: 1, bytes: 3 * mib });
    view.onEvent({ type: 'blob-done', image, digest: big, size: 2 * mib });
    view.stop();
    const lines = text()
      .split(/[\r\n]/)
      .filter((line) => line.includes(' of '));
    expect(lines.at(-1)).toContain('50% | 2.0 MiB of 4.0 MiB');
  });
});
