/**
 * @module test/support/seeded-store
 * A small store on disk for the verify tests: two blobs (a config and a 100 000-byte layer), a
 * manifest tagged v1 that links both, and an upload session holding one 11-byte chunk. The store
 * is closed when it returns, so the index is whole in index.db.
 */
import { requireDigest, type Digest } from '../../src/oci/digest.js';
import { requireRepoName, type RepoName, type Tag } from '../../src/oci/reference.js';
import { LocalStore } from '../../src/store/local-store.js';
import { sha256 } from './http.js';

export interface SeededStore {
  name: RepoName;
  config: Digest;
  layer: Digest;
  manifest: Digest;
  uploadId: string;
}

async function* bytes(data: string | Buffer): AsyncIterable<Uint8Array> {
  yield Buffer.from(data);
}

export async function seedStore(dir: string): Promise<SeededStore> {
  const name = requireRepoName('verify/app');
  const store = await LocalStore.open(dir);
  try {
    const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux' });
    const layerBytes = Buffer.alloc(100_000, 7);
    const config = requireDigest(sha256(configBytes));
    const layer = requireDigest(sha256(layerBytes));
    await store.putBlob(name, config, bytes(configBytes));
    await store.putBlob(name, layer, bytes(layerBytes));
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configBytes.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerBytes.length }],
      }),
    );
    const put = await store.putManifest(name, 'v1' as Tag, manifestBytes, 'application/vnd.oci.image.manifest.v1+json');
    const upload = await store.startUpload(name);
    await store.appendUpload(name, upload.id, bytes('first chunk'));
    return { name, config, layer, manifest: put.digest, uploadId: upload.id };
  } finally {
    store.close();
  }
}
