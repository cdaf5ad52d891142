/**
 * @module oci/transfer-events
 * What a copy reports while it runs (the transfer engine and archive imports); the CLI renders these (bars on a
 * terminal, plain lines otherwise, JSON for scripts). `image` is the full
 * reference being copied, as the user named it.
 */
import type { Digest } from './digest.js';

export type TransferEvent =
  | { type: 'image-start'; image: string; digest: Digest; blobs: number; bytes: number }
  | { type: 'blob-start'; image: string; digest: Digest; size: number }
  | { type: 'blob-progress'; image: string; digest: Digest; size: number; done: number }
  | { type: 'blob-done'; image: string; digest: Digest; size: number }
  | { type: 'blob-skipped'; image: string; digest: Digest; size: number }
  | { type: 'image-done'; image: string; digest: Digest; bytes: number };

export type TransferListener = (event: TransferEvent) => void;
