/**
 * @module cli/transfer-progress
 * Renders transfer events: a bar with bytes, rate and ETA on a terminal
 * (cli-progress), plain lines when not a TTY, one JSON object per line with
 * --json, nothing with --quiet. Progress goes to `out` (stderr when stdout
 * carries the archive).
 */
import { Presets, SingleBar } from 'cli-progress';
import type { Digest } from '../oci/digest.js';
import type { TransferEvent, TransferListener } from '../oci/transfer-events.js';
import { formatBytes } from './format-bytes.js';

export type ProgressMode = 'bar' | 'lines' | 'json' | 'quiet';

export interface ProgressView {
  onEvent: TransferListener;
  /** The total, when known before any event (an archive file's size). */
  setTotal(bytes: number): void;
  stop(): void;
}

export function progressMode(flags: { quiet?: boolean; json?: boolean }, out: NodeJS.WriteStream): ProgressMode {
  if (flags.json === true) return 'json';
  if (flags.quiet === true) return 'quiet';
  return out.isTTY ? 'bar' : 'lines';
}

export function createProgressView(mode: ProgressMode, out: NodeJS.WritableStream): ProgressView {
  if (mode === 'quiet') return { onEvent: () => undefined, setTotal: () => undefined, stop: () => undefined };
  if (mode === 'json') {
    return {
      onEvent: (event) => out.write(`${JSON.stringify(event)}\n`),
      setTotal: () => undefined,
      stop: () => undefined,
    };
  }
  if (mode === 'lines') return linesView(out);
  return barView(out);
}

function short(digest: Digest): string {
  return digest.slice(0, digest.indexOf(':') + 13);
}

function linesView(out: NodeJS.WritableStream): ProgressView {
  const line = (text: string): void => void out.write(`${text}\n`);
  return {
    onEvent: (event: TransferEvent) => {
      if (event.type === 'image-start') line(`${event.image}: ${event.blobs} blobs, ${formatBytes(event.bytes)}`);
      else if (event.type === 'blob-done') line(`  ${short(event.digest)} ${formatBytes(event.size)} done`);
      else if (event.type === 'blob-skipped')
        line(`  ${short(event.digest)} ${formatBytes(event.size)} already present`);
      else if (event.type === 'image-done') line(`${event.image}: done (${event.digest})`);
    },
    setTotal: () => undefined,
    stop: () => undefined,
  };
}

/** One bar over all bytes; each blob's progress adds only what is new since its last report. */
function barView(out: NodeJS.WritableStream): ProgressView {
  const bar = new SingleBar(
    {
      stream: out,
      format: '{bar} {percentage}% | {done} of {all} | {rate}/s | ETA {eta_formatted} | {image}',
      hideCursor: true,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  let total = 0;
  let fixedTotal = false;
  let value = 0;
  const startedAt = Date.now();
  const seen = new Map<Digest, number>();
  bar.start(1, 0, { image: '', done: '0 B', all: '?', rate: '0 B' });
  const advance = (digest: Digest, done: number, image: string): void => {
    value += done - (seen.get(digest) ?? 0);
    seen.set(digest, done);
    const seconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
    bar.setTotal(Math.max(total, value, 1));
    bar.update(value, {
      image,
      done: formatBytes(value),
      all: total === 0 ? '?' : formatBytes(total),
      rate: formatBytes(value / seconds),
    });
  };
  return {
    onEvent: (event) => {
      if (event.type === 'image-start' && !fixedTotal) total += event.bytes;
      else if (event.type === 'blob-progress') advance(event.digest, event.done, event.image);
      else if (event.type === 'blob-done' || event.type === 'blob-skipped')
        advance(event.digest, event.size, event.image);
    },
    setTotal: (bytes) => {
      total = bytes;
      fixedTotal = true;
    },
    stop: () => bar.stop(),
  };
}
