/**
 * @module archive/entry-stages
 * Small pull stages over an entry's body: read a small file whole (capped),
 * and keep a copy of a blob that is a manifest.
 */
import { OciError } from '../oci/errors.js';
import { maxManifestBytes, parseManifest } from '../oci/manifest.js';

/** Reads a small entry whole, refusing past `cap` bytes. */
export async function readSmall(body: AsyncIterable<Uint8Array>, cap: number, label: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > cap) throw new OciError('MANIFEST_INVALID', `${label} exceeds ${cap} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Passes a (verified) blob through, keeping a copy when it may be a manifest:
 * at most 4 MiB and starting with '{'. Layers (gzip, tar) are never copied.
 * At the end, a copy that parses as a manifest or index is handed to `keep`.
 */
export async function* collectManifest(
  body: AsyncIterable<Uint8Array>,
  size: number,
  keep: (bytes: Uint8Array) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  let chunks: Uint8Array[] | undefined = size <= maxManifestBytes ? [] : undefined;
  for await (const chunk of body) {
    if (chunks !== undefined && chunks.length === 0 && chunk.byteLength > 0 && chunk[0] !== 0x7b) chunks = undefined;
    chunks?.push(chunk);
    yield chunk;
  }
  if (chunks === undefined || chunks.length === 0) return;
  const bytes = Buffer.concat(chunks);
  try {
    const parsed = parseManifest(bytes, undefined);
    if (parsed.kind !== 'schema1') keep(bytes);
  } catch {
    // A config or another JSON blob: not a manifest.
  }
}
