/**
 * @module archive/oci-layout-dir-writer
 * An ImageWriter that writes an OCI image layout as a directory (`wharf copy … oci:<dir>`,
 * `wharf export -o <dir>/`): the same content as the tar form (oci-layout, blobs/<alg>/<hex>,
 * index.json with each image's full ref.name, docker's manifest.json for single-platform images).
 * Every file is written under a temp name at the layout's top (`.wharf-*.part`, which no layout
 * reader takes for a blob), fsync'd and renamed, so an interrupted copy never leaves part of a blob
 * under its final name; index.json is renamed last, so a reader sees the new images all at once.
 * Into a directory that already holds a layout, the images are added: index.json and manifest.json
 * are merged (an image takes over the ref.name it names) and blobs already there are not rewritten
 * (trusted by their name, as skopeo does). abort() removes what this writer created.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobInfo, ManifestContent } from '../oci/image-source.js';
import type { ImageWriter } from '../oci/image-transfer.js';
import { mediaTypes } from '../oci/media-types.js';
import type { RepoName, Tag } from '../oci/reference.js';
import { blobPath, mergeDockerLoadManifest } from './docker-load-manifest.js';
import { nodeOutputFs, syncDirs, type OutputFs } from './durable-output.js';
import { readExistingLayout, type ExistingLayout } from './existing-layout.js';
import { LayoutIndex, type LayoutIndexOptions } from './layout-index.js';
import { indexFile, layoutFile, layoutVersion } from './layout-names.js';

const dockerManifestFile = 'manifest.json';

/** The fs calls the layout's durability rests on (archive/durable-output.ts; test/layout-durability.test.ts). */
export type LayoutFs = OutputFs;

export class OciLayoutDirWriter implements ImageWriter {
  private readonly index: LayoutIndex;
  /** Blobs this batch wrote or found in the layout. */
  private readonly present = new Set<Digest>();
  /** Blob writes under way, so a second write of the same digest waits for the first. */
  private readonly writing = new Map<Digest, Promise<void>>();
  /** Final paths this writer created, removed again by abort(). */
  // Stryker disable next-line ArrayDeclaration: a stray first entry is a relative name abort() rm's with force (no such file in the test's cwd); nothing else reads the list.
  private readonly created: string[] = [];
  private readonly temps = new Set<string>();
  private opened: Promise<ExistingLayout> | undefined;
  private failed = false;

  constructor(
    private readonly dir: string,
    options: LayoutIndexOptions = {},
    private readonly fs: LayoutFs = nodeOutputFs,
  ) {
    this.index = new LayoutIndex(options);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    await this.open();
    if (this.present.has(digest) || this.writing.has(digest)) return true;
    const found = await stat(join(this.dir, blobPath(digest))).then(
      (s) => s.isFile(),
      () => false,
    );
    if (found) this.present.add(digest);
    return found;
  }

  async writeBlob(blob: BlobInfo, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    await this.open();
    const pending = this.writing.get(blob.digest);
    if (pending !== undefined) return pending;
    if (this.present.has(blob.digest)) return;
    const write = this.writeFile(blobPath(blob.digest), body, blob.size).then(() => {
      this.present.add(blob.digest);
    });
    this.writing.set(blob.digest, write);
    try {
      await write;
    } finally {
      this.writing.delete(blob.digest);
    }
  }

  async writeManifest(_name: RepoName, manifest: ManifestContent): Promise<void> {
    this.index.recordManifest(manifest);
    await this.writeBlob({ digest: manifest.digest, size: manifest.bytes.byteLength }, [manifest.bytes]);
  }

  async tag(name: RepoName, reference: Tag | Digest, digest: Digest): Promise<void> {
    this.index.tag(name, reference, digest);
  }

  async commit(): Promise<void> {
    const existing = await this.open();
    await Promise.all(this.writing.values());
    if (!existing.hasLayoutFile) {
      await this.writeFile(layoutFile, [json({ imageLayoutVersion: layoutVersion })]);
    }
    const added = this.index.dockerManifest(this.present);
    if (added.length > 0) {
      const merged = mergeDockerLoadManifest(existing.dockerManifest, added);
      await this.writeFile(dockerManifestFile, [json(merged)], undefined, true);
    }
    const index = {
      ...existing.index,
      schemaVersion: 2,
      mediaType: mediaTypes.ociIndex,
      manifests: this.index.indexManifests(existing.manifests),
    };
    // The renames so far (blobs, manifests, the files above) durable before index.json names them:
    // otherwise a crash could keep the new index.json and lose a blob's directory entry.
    await syncDirs(this.fs, [this.dir, ...(await blobDirs(this.dir))]);
    // Last: until index.json names them, the new blobs are only unreferenced files.
    await this.writeFile(indexFile, [json(index)], undefined, true);
    await syncDirs(this.fs, [this.dir]);
  }

  async abort(): Promise<void> {
    this.failed = true;
    await Promise.allSettled(this.writing.values());
    const existing = await this.opened?.catch(() => undefined);
    await Promise.all([...this.temps].map((t) => rm(t, { force: true })));
    if (existing?.createdDir === true) {
      await rm(this.dir, { recursive: true, force: true });
      return;
    }
    await Promise.all(this.created.map((p) => rm(p, { force: true })));
  }

  private open(): Promise<ExistingLayout> {
    this.opened ??= readExistingLayout(this.dir);
    return this.opened;
  }

  /** Streams into a temp file at the layout's top, checks the size, fsyncs, renames into place. */
  private async writeFile(
    path: string,
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    size?: number,
    replace = false,
  ): Promise<void> {
    if (this.failed) throw new OciError('UNKNOWN', 'the copy into the layout was aborted');
    const final = join(this.dir, path);
    const temp = join(this.dir, `.wharf-${randomUUID()}.part`);
    this.temps.add(temp);
    try {
      const handle = await this.fs.open(temp, 'wx', 0o644);
      let written = 0;
      try {
        for await (const chunk of body) {
          written += chunk.byteLength;
          if (written > (size ?? Infinity)) break;
          await handle.write(chunk);
        }
        if (size !== undefined && written !== size) {
          throw new OciError('SIZE_INVALID', `${path}: ${written} bytes or more, the descriptor says ${size}`);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (!replace && (await exists(final))) return;
      await mkdir(dirname(final), { recursive: true });
      if (!replace) this.created.push(final);
      await this.fs.rename(temp, final);
    } finally {
      this.temps.delete(temp);
      await rm(temp, { force: true });
    }
  }
}

function json(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    // Stryker disable next-line ArrowFunction: its `undefined` is falsy like false, and exists() is only read as a condition.
    () => false,
  );
}

/** blobs/ and blobs/<algorithm>/ (the entries made and the files renamed into them), when there. */
async function blobDirs(dir: string): Promise<string[]> {
  const blobs = join(dir, 'blobs');
  const algorithms = await readdir(blobs).catch(() => undefined);
  return algorithms === undefined ? [] : [blobs, ...algorithms.map((a) => join(blobs, a))];
}
