/**
 * The layer table of ../shared/ARCHITECTURE.md as a test: each layer imports
 * only what its row allows, and only cli/ touches process.env, argv or exit.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/spawn-wharf.js';

const src = join(repoRoot, 'src');

/** For each layer: the other layers and the packages it must not import. */
const forbidden: Record<string, string[]> = {
  oci: [
    'store',
    'upstream',
    'proxy',
    'transfer',
    'archive',
    'registry',
    'cli',
    'node:fs',
    'node:net',
    'node:http',
    'better-sqlite3',
    'hono',
    'undici',
  ],
  store: ['upstream', 'proxy', 'archive', 'registry', 'cli', 'hono', '@hono/node-server', 'undici'],
  upstream: ['store', 'proxy', 'archive', 'registry', 'cli', 'hono', 'better-sqlite3'],
  proxy: ['registry', 'archive', 'transfer', 'cli', 'hono'],
  transfer: ['store', 'upstream', 'proxy', 'archive', 'registry', 'cli', 'node:fs', 'better-sqlite3', 'hono', 'undici'],
  archive: ['store', 'upstream', 'proxy', 'transfer', 'registry', 'cli', 'better-sqlite3', 'hono', 'undici'],
  registry: ['store', 'upstream', 'proxy', 'transfer', 'archive', 'cli', 'better-sqlite3', 'undici'],
};

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function importsOf(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? '');
}

/** '../store/x.js' seen from src/registry → 'store'; a package name stays as it is. */
function targetOf(specifier: string, layer: string): string {
  if (!specifier.startsWith('.')) return specifier;
  if (specifier.startsWith('./')) return layer;
  return specifier.split('/')[1] ?? '';
}

describe('architecture', () => {
  it('keeps every layer to its allowed imports', async () => {
    const violations: string[] = [];
    for (const file of await sourceFiles(src)) {
      const layer = relative(src, file).split('/')[0] ?? '';
      const text = await readFile(file, 'utf8');
      for (const specifier of importsOf(text)) {
        const target = targetOf(specifier, layer);
        if ((forbidden[layer] ?? []).some((f) => target === f || target.startsWith(`${f}/`))) {
          violations.push(`${relative(repoRoot, file)} imports ${specifier}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('keeps file access in store/ to the modules that own the files', async () => {
    // blob-files owns blobs/ and tmp/, blob-fill its one temp file, database the index file:
    // another storage backend replaces those three and nothing else.
    const owners = new Set(['store/blob-files.ts', 'store/blob-fill.ts', 'store/database.ts']);
    const offenders: string[] = [];
    for (const file of await sourceFiles(join(src, 'store'))) {
      if (owners.has(relative(src, file))) continue;
      const text = await readFile(file, 'utf8');
      if (importsOf(text).some((s) => s === 'node:fs' || s === 'node:fs/promises')) {
        offenders.push(relative(repoRoot, file));
      }
    }
    expect(offenders).toEqual([]);
  });

  it('lets only cli/ read process.env or argv, or exit', async () => {
    const offenders: string[] = [];
    for (const file of await sourceFiles(src)) {
      if (relative(src, file).startsWith('cli/')) continue;
      if (/process\.(env|argv|exit)\b/.test(await readFile(file, 'utf8'))) offenders.push(relative(repoRoot, file));
    }
    expect(offenders).toEqual([]);
  });
});
