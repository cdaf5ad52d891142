/**
 * @module test/support/wharf
 * Starts a real wharf server in-process on 127.0.0.1:0 over a fresh temp data dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/cli/start-server.js';

export interface WharfHandle {
  /** http://127.0.0.1:<port> with no trailing slash */
  url: string;
  /** 127.0.0.1:<port>, what skopeo and other clients want */
  host: string;
  dataDir: string;
  close(): Promise<void>;
}

export async function startWharf(options: { dataDir?: string; keepData?: boolean } = {}): Promise<WharfHandle> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-test-')));
  const server = await startServer({ dataDir, host: '127.0.0.1', port: 0, logLevel: 'silent' });
  const host = `127.0.0.1:${server.port}`;
  return {
    url: `http://${host}`,
    host,
    dataDir,
    async close() {
      await server.close();
      if (options.dataDir === undefined && options.keepData !== true)
        await rm(dataDir, { recursive: true, force: true });
    },
  };
}
