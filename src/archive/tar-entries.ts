/**
 * @module archive/tar-entries
 * A tar stream, plain or gzip'd (told by its first two bytes, 1f 8b), as
 * layout entries, in one pass. A stream that ends before the tar does
 * (truncated) is an error, never a clean end.
 */
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { OciError } from '../oci/errors.js';
import type { EntryType, LayoutEntry } from './layout-entry.js';

export async function* readTarEntries(input: AsyncIterable<Uint8Array>): AsyncGenerator<LayoutEntry> {
  const tar = extract();
  const fed = feed(maybeGunzip(input), tar as unknown as Writable);
  // Seen through the tar's own error (destroy below) or after the loop; never unhandled.
  fed.catch(() => undefined);
  let failure: unknown;
  // Stryker disable next-line StringLiteral,ArrowFunction,AssignmentOperator: tar-stream 3's extractor rejects its iterator and its entries' bodies with the very error it emits, so `failure` is always `error` (tar-entries.test.ts covers parse, gunzip and input errors).
  (tar as unknown as Writable).on('error', (error) => (failure ??= error));
  const truncated = (where: string, error: unknown): OciError =>
    new OciError(
      'SIZE_INVALID',
      // Stryker disable next-line LogicalOperator: `failure` is `error` (see the listener above).
      `the archive ends ${where} (truncated or unreadable: ${messageOf(failure ?? error)})`,
      {
        // Stryker disable next-line LogicalOperator: `failure` is `error` (see the listener above).
        cause: failure ?? error,
      },
    );
  try {
    const entries = tar[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<typeof tar extends AsyncIterable<infer E> ? E : never>;
      try {
        next = await entries.next();
      } catch (error) {
        throw truncated('between entries', error);
      }
      if (next.done === true) break;
      const entry = next.value;
      yield {
        path: entry.header.name,
        type: typeOf(entry.header),
        size: entry.header.size,
        ...(entry.header.linkname == null ? {} : { linkTarget: entry.header.linkname }),
        body: guard(entry as AsyncIterable<Uint8Array>, (error) => truncated(`inside ${entry.header.name}`, error)),
      };
    }
    await fed;
  } finally {
    tar.destroy();
  }
}

/** A body whose stream error (the tar stopped under it) becomes one clear line. */
async function* guard(body: AsyncIterable<Uint8Array>, explain: (error: unknown) => Error): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } catch (error) {
    throw explain(error);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function typeOf(header: Header): EntryType {
  switch (header.type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    default:
      return 'other';
  }
}

/** Writes the input into the tar parser with back-pressure; an input error destroys the parser with it. */
async function feed(input: AsyncIterable<Uint8Array>, tar: Writable): Promise<void> {
  try {
    for await (const chunk of input) {
      if (!tar.write(chunk)) await once(tar, 'drain');
    }
    tar.end();
  } catch (error) {
    tar.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/** The input as it is, or gunzipped when it starts with gzip's magic bytes. */
async function* maybeGunzip(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const iterator = input[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headBytes = 0;
  while (headBytes < 2) {
    const next = await iterator.next();
    if (next.done === true) break;
    head.push(next.value);
    headBytes += next.value.byteLength;
  }
  async function* whole(): AsyncGenerator<Uint8Array> {
    yield* head;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
  }
  const first = Buffer.concat(head);
  if (first[0] !== 0x1f || first[1] !== 0x8b) {
    yield* whole();
    return;
  }
  const gunzip = createGunzip();
  const fed = feed(whole(), gunzip);
  fed.catch(() => undefined);
  yield* gunzip as Readable as AsyncIterable<Uint8Array>;
  await fed;
}
