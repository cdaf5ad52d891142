/**
 * @module archive/commit-or-abort
 * An archive import is all or nothing: the writer commits what `read` wrote,
 * or, on any failure, aborts it (the store is left as it was) and the error goes on.
 */
import type { ImageWriter } from '../oci/image-transfer.js';

export async function commitOrAbort<W extends ImageWriter, T>(writer: W, read: (writer: W) => Promise<T>): Promise<T> {
  try {
    const result = await read(writer);
    await writer.commit();
    return result;
  } catch (error) {
    await writer.abort(error);
    throw error;
  }
}
