/**
 * @module oci/count-progress
 * Counts a blob's bytes as they pass and reports every `stepBytes`, so a
 * 2 GiB layer yields hundreds of events, not tens of thousands.
 */

/** 4 MiB: a terminal redraw per 4 MiB is smooth at disk speed and cheap. */
export const progressStepBytes = 4 * 1024 * 1024;

export async function* countProgress(
  body: AsyncIterable<Uint8Array>,
  report: (done: number) => void,
  stepBytes = progressStepBytes,
): AsyncGenerator<Uint8Array, void, undefined> {
  let done = 0;
  let reported = 0;
  for await (const chunk of body) {
    done += chunk.byteLength;
    if (done - reported >= stepBytes) {
      reported = done;
      report(done);
    }
    yield chunk;
  }
}
