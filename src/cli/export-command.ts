/**
 * @module cli/export-command
 * `wharf export <ref…> | --all -o bundle.tar`: streams an OCI image layout tar
 * of the named images (all platforms) to a file or stdout (`-o -`). It opens
 * the store read-only and takes no lock, so it may run beside `wharf serve`
 * (SQLite's WAL lets a reader in while serve writes; blob files never change
 * once written). A file is written as `<file>.part`, fsynced and renamed when
 * complete, then its directory fsynced: a failed export leaves no bundle that
 * looks whole, and a crash after it ended loses none (archive/durable-output.ts). A folder (`-o out/`, or an
 * existing directory) gets the layout as files (archive/oci-layout-dir-writer.ts).
 */
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { TempOutput, type OutputFs } from '../archive/durable-output.js';
import { OciLayoutDirWriter } from '../archive/oci-layout-dir-writer.js';
import { OciLayoutWriter } from '../archive/oci-layout-writer.js';
import { OciError } from '../oci/errors.js';
import { parseImageRef, type ImageRef } from '../oci/image-ref.js';
import { parseTag, type RepoName } from '../oci/reference.js';
import { LocalStore } from '../store/local-store.js';
import { indexExists } from '../store/database.js';
import { copyImages, type CopySummary } from '../transfer/copy-images.js';
import { loadConfig } from './config.js';
import { formatBytes } from './format-bytes.js';
import { createProgressView, progressMode } from './transfer-progress.js';

export interface ExportFlags {
  config?: string;
  data?: string;
  output: string;
  all?: boolean;
  /** Also the referrers of every manifest exported. */
  referrers?: boolean;
  quiet?: boolean;
  json?: boolean;
  /**
   * Not a flag (no option sets it): the fs calls the output's durability rests on
   * (archive/durable-output.ts). Tests hand in wrappers that log each sync and rename; absent, Node's.
   */
  outputFs?: OutputFs;
}

export async function runExport(
  refs: string[],
  flags: ExportFlags,
  env: Record<string, string | undefined>,
): Promise<void> {
  const config = loadConfig({ file: flags.config ?? env.WHARF_CONFIG, env, flags: { data: flags.data } });
  if (!indexExists(config.dataDir)) throw new Error(`no store in ${config.dataDir}`);
  if (flags.all === true && refs.length > 0) throw new Error('give image references or --all, not both');
  if (flags.all !== true && refs.length === 0)
    throw new Error('name at least one image (name:tag or name@digest), or --all');
  const store = LocalStore.openReadOnly(config.dataDir);
  const toStdout = flags.output === '-';
  // The archive owns stdout: progress and events go to stderr then.
  const progressOut = toStdout ? process.stderr : process.stdout;
  const view = createProgressView(
    progressMode(flags, process.stderr),
    flags.json === true ? progressOut : process.stderr,
  );
  // A folder (`-o out/`, or one that exists) gets the layout as files, added to a layout already there.
  const toDir = !toStdout && (flags.output.endsWith('/') || (await isDirectory(flags.output)));
  let file: TempOutput | undefined;
  try {
    const requests = flags.all === true ? await allTagged(store) : refs.map(requireRef);
    if (!toStdout && !toDir) file = new TempOutput(flags.output, flags.outputFs);
    const out: Writable | undefined = toStdout ? process.stdout : file?.stream;
    const summary = await copyImages(
      store,
      out === undefined ? new OciLayoutDirWriter(flags.output, {}, flags.outputFs) : new OciLayoutWriter(out),
      requests.map((from) => ({ from })),
      // A sparse index (preload --platform) is exported as the store holds it: its absent children stay absent.
      { onEvent: view.onEvent, referrers: flags.referrers === true, sparse: true },
    );
    view.stop();
    await file?.commit();
    if (flags.quiet !== true && flags.json !== true) process.stderr.write(`${describe(summary, flags.output)}\n`);
  } catch (error) {
    view.stop();
    await file?.discard();
    throw error;
  } finally {
    store.close();
  }
}

function describe(summary: CopySummary, output: string): string {
  const images = summary.images.length;
  return `exported ${images} image${images === 1 ? '' : 's'} (${summary.blobsSent} blobs, ${formatBytes(summary.bytes)}) to ${output === '-' ? 'stdout' : output}`;
}

function requireRef(value: string): ImageRef {
  const ref = parseImageRef(value);
  if (ref === undefined) {
    throw new OciError(
      'NAME_INVALID',
      `${JSON.stringify(value)} is not name:tag or name@digest as the store names it (e.g. docker.io/library/alpine:3.20)`,
    );
  }
  return ref;
}

/** Every tag of every repository, in name order. */
async function allTagged(store: LocalStore): Promise<ImageRef[]> {
  const refs: ImageRef[] = [];
  for (const name of await store.listRepositories({})) {
    for (const tag of (await store.listTags(name as RepoName, {})) ?? []) {
      const parsed = parseTag(tag);
      if (parsed !== undefined) refs.push({ name: name as RepoName, reference: parsed });
    }
  }
  if (refs.length === 0) throw new Error('the store holds no tagged image');
  return refs;
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
