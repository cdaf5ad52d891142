/**
 * @module archive/oci-layout-writer
 * An ImageWriter that streams an OCI image layout as a tar (image-spec
 * image-layout.md) to any writable: `oci-layout` first, each blob once as
 * `blobs/<alg>/<hex>` as it arrives, `index.json` last, naming every image by
 * its full reference in `org.opencontainers.image.ref.name` (layout-index.ts,
 * shared with the directory form). Nothing is built
 * in memory but manifests; a tar is sequential, so blob entries are written
 * one at a time (the engine's other reads wait on back-pressure meanwhile).
 * Before index.json, a docker `manifest.json` for the single-platform images,
 * so `docker load` takes the same tar (see docker-load-manifest.ts).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pack, type Pack } from 'tar-stream';
import { digestAlgorithm, digestEncoded, type Digest } from '../oci/digest.js';
import type { BlobInfo, ManifestContent } from '../oci/image-source.js';
import type { ImageWriter } from '../oci/image-transfer.js';
import { mediaTypes } from '../oci/media-types.js';
import type { RepoName, Tag } from '../oci/reference.js';
import { LayoutIndex, type LayoutIndexOptions } from './layout-index.js';
import { layoutVersion } from './layout-names.js';

// Pinned header fields: the same images give the same tar bytes on any machine.
const fixed = { mtime: new Date(0), uid: 0, gid: 0, uname: 'root', gname: 'root' } as const;

export class OciLayoutWriter implements ImageWriter {
  private readonly pack: Pack;
  private readonly pumped: Promise<void>;
  private readonly written = new Set<Digest>();
  private readonly dirs = new Set<string>();
  private readonly index: LayoutIndex;
  /** Entries go one at a time: each waits for the previous one to end. */
  private queue: Promise<void> = Promise.resolve();
  private failed: unknown;

  constructor(out: Writable, options: LayoutIndexOptions = {}) {
    this.index = new LayoutIndex(options);
    this.pack = pack();
    this.pumped = pump(this.pack, out);
    // Seen by whoever awaits commit(); until then, a failed output must not be an unhandled rejection.
    this.pumped.catch((error: unknown) => {
      this.failed ??= error;
      this.pack.destroy(asError(error));
    });
    // An output that fails between writes (EPIPE from a reader that went away) is recorded, not a crash.
    out.on('error', (error: Error) => {
      this.failed ??= error;
      this.pack.destroy(error);
    });
    void this.enqueue(() =>
      this.entry('oci-layout', [Buffer.from(JSON.stringify({ imageLayoutVersion: layoutVersion }))]),
    );
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return this.written.has(digest);
  }

  async writeBlob(blob: BlobInfo, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    if (this.written.has(blob.digest)) return;
    this.written.add(blob.digest);
    await this.enqueue(() => this.blobEntry(blob, body));
  }

  async writeManifest(_name: RepoName, manifest: ManifestContent): Promise<void> {
    this.index.recordManifest(manifest);
    await this.writeBlob({ digest: manifest.digest, size: manifest.bytes.byteLength }, [manifest.bytes]);
  }

  async tag(name: RepoName, reference: Tag | Digest, digest: Digest): Promise<void> {
    this.index.tag(name, reference, digest);
  }

  async commit(): Promise<void> {
    const index = { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: this.index.indexManifests() };
    const dockerManifest = this.index.dockerManifest(this.written);
    if (dockerManifest.length > 0) {
      await this.enqueue(() => this.entry('manifest.json', [Buffer.from(JSON.stringify(dockerManifest))]));
    }
    await this.enqueue(() => this.entry('index.json', [Buffer.from(JSON.stringify(index))]));
    this.pack.finalize();
    await this.pumped;
  }

  async abort(error?: unknown): Promise<void> {
    this.failed ??= error ?? new Error('aborted');
    this.pack.destroy(asError(this.failed));
    await this.pumped.catch(() => undefined);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(() => {
      if (this.failed !== undefined) throw asError(this.failed);
      return task();
    });
    // A failed entry leaves a broken tar: every later one fails with the same error.
    this.queue = run.catch((error: unknown) => {
      this.failed ??= error;
    });
    return run;
  }

  private async blobEntry(blob: BlobInfo, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    const algorithm = digestAlgorithm(blob.digest);
    for (const dir of ['blobs/', `blobs/${algorithm}/`]) {
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await new Promise<void>((resolve, reject) =>
        this.pack.entry({ name: dir, type: 'directory', mode: 0o755, ...fixed }, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    }
    await this.entry(`blobs/${algorithm}/${digestEncoded(blob.digest)}`, body, blob.size);
  }

  /** One file entry; its size is known up front (tar headers come first), and checked by tar-stream too. */
  private async entry(
    name: string,
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    size?: number,
  ): Promise<void> {
    const known = size ?? sumOf(body as Uint8Array[]);
    // A promise's executor runs at once, so `settle` is set before tar-stream can call it.
    let settle!: (error?: Error | null) => void;
    const finished = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    // Stryker disable next-line StringLiteral: tar-stream takes a missing type from the mode, and 0o644 is a file.
    const stream = this.pack.entry({ name, type: 'file', mode: 0o644, size: known, ...fixed }, settle);
    // tar-stream's entry is a streamx Writable, which speaks node's Writable protocol (write/drain/end).
    const sink = stream as unknown as Writable;
    // Its failure reaches us through the entry's callback; an 'error' event without a listener would crash.
    sink.on('error', () => undefined);
    try {
      for await (const chunk of body) {
        if (!sink.write(chunk)) await once(sink, 'drain');
      }
      sink.end();
    } catch (error) {
      sink.destroy(error instanceof Error ? error : new Error(String(error)));
      await finished.catch(() => undefined);
      throw error;
    }
    await finished;
  }
}

function sumOf(chunks: readonly Uint8Array[]): number {
  return chunks.reduce((sum, c) => sum + c.byteLength, 0);
}

/** Copies the tar to the output with back-pressure; an output error, or its close, stops the tar. */
async function pump(source: Pack, out: Writable): Promise<void> {
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    if (out.write(chunk)) continue;
    try {
      // A stream destroyed without an error takes no more writes and says nothing but its 'close'.
      if (out.closed) throw closedEarly();
      await drained(out);
    } catch (error) {
      // Stops the tar with this error before the loop's exit destroys it without one (the entry under
      // way then fails with it, not with tar-stream's "tar entry destroyed").
      source.destroy(asError(error));
      throw error;
    }
  }
}

/**
 * The output's 'drain'. once() rejects on 'error' (a closed pipe, a full disk), and a 'close' before the
 * drain (a destroy without an error) rejects too, so a dead output cannot leave this waiting.
 */
async function drained(out: Writable): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([
      once(out, 'drain', { signal: done.signal }),
      once(out, 'close', { signal: done.signal }).then(() => {
        throw closedEarly();
      }),
    ]);
  } finally {
    // Removes the listener of the one that did not happen (its AbortError is taken by the race).
    done.abort();
  }
}

function closedEarly(): Error {
  return new Error('the output was closed before the archive was written');
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
