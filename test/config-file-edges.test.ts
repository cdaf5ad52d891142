/**
 * Round 7b of the planted-bug audit (docs/mutation-testing.md): what the configuration reads at the
 * edges the air-gapped site and the CI cache lean on. `WHARF_OFFLINE=1` means offline (a `1` read as
 * false would dial out from a site that has no network), an empty WHARF_* variable is unset (a
 * compose file's `WHARF_DATA=` must not move the store), and a YAML typo or a list where a value
 * belongs is refused with its key, also inside a known section, instead of passing silently.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/cli/config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-config-edges-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function yamlFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('booleans', () => {
  it('reads 1 and true as on, 0 and false as off, from the environment and the file', async () => {
    expect(loadConfig({ env: { WHARF_OFFLINE: '1' }, flags: {} }).offline).toBe(true);
    expect(loadConfig({ env: { WHARF_OFFLINE: 'true' }, flags: {} }).offline).toBe(true);
    expect(loadConfig({ env: { WHARF_OFFLINE: '0' }, flags: {} }).offline).toBe(false);
    expect(loadConfig({ env: { WHARF_VERIFY_READS: '0' }, flags: {} }).verifyReads).toBe(false);
    const file = await yamlFile('offline-1.yaml', 'offline: 1\n');
    expect(loadConfig({ file, env: {}, flags: {} }).offline).toBe(true);
  });
});

describe('an empty environment variable', () => {
  it('counts as unset: the file (or the default) still decides', async () => {
    const file = await yamlFile('data.yaml', 'data: /srv/from-file\noffline: true\nlisten: "127.0.0.1:6000"\n');
    const config = loadConfig({ file, env: { WHARF_DATA: '', WHARF_OFFLINE: '', WHARF_LISTEN: '' }, flags: {} });
    expect(config.dataDir).toBe('/srv/from-file');
    expect(config.offline).toBe(true);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 6000 });
    expect(loadConfig({ env: { WHARF_LOG_LEVEL: '' }, flags: {} }).logLevel).toBe('info');
  });
});

describe('the YAML file', () => {
  it('refuses a list where a value belongs, naming the key', async () => {
    const offline = await yamlFile('offline-list.yaml', 'offline: [true]\n');
    expect(() => loadConfig({ file: offline, env: {}, flags: {} })).toThrow(
      'config: offline: expected a string, number or boolean',
    );
    const nested = await yamlFile('verify-list.yaml', 'store:\n  verifyReads:\n    - false\n');
    expect(() => loadConfig({ file: nested, env: {}, flags: {} })).toThrow(
      'config: store.verifyReads: expected a string, number or boolean',
    );
  });

  it('refuses an unknown key inside a known section, so a typo there does not pass silently either', async () => {
    const typo = await yamlFile('nested-typo.yaml', 'store:\n  verifyRead: false\n');
    expect(() => loadConfig({ file: typo, env: {}, flags: {} })).toThrow('config: store.verifyRead: unknown option');
    const deeper = await yamlFile('deeper-typo.yaml', 'store:\n  gc:\n    interval: 2h\n    grace_period: 1h\n');
    expect(() => loadConfig({ file: deeper, env: {}, flags: {} })).toThrow(
      'config: store.gc.grace_period: unknown option',
    );
  });
});
