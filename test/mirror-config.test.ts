/**
 * @module test/mirror-config.test
 * The client configs `formatMirrorConfig` writes: valid JSON for docker, and for containerd and
 * podman TOML of the exact shape each client reads. No TOML parser is installed, so a strict parser
 * of the small TOML subset the module emits checks the files; clients-smoke.test.ts feeds the same
 * output to the real ctr and podman.
 */
import { describe, expect, it } from 'vitest';
import { formatMirrorConfig, MirrorConfigError, type MirrorConfig } from '../src/cli/mirror-config.js';

type TomlValue = string | boolean | string[];
type TomlTable = Record<string, TomlValue>;

interface TomlDocument {
  /** Keys before the first table header. */
  top: TomlTable;
  /** `[name]` and `[name."quoted"]` tables, by their header text. */
  tables: Map<string, TomlTable>;
  /** `[[name]]` array-of-tables entries in order, as [header, table]; `[[a.b]]` nests under the last `[[a]]`. */
  arrays: Array<[string, TomlTable]>;
}

/**
 * Parses the subset of TOML the module writes, and throws on any line outside it: comments, blank
 * lines, `[table]`, `[table."quoted key"]`, `[[array]]`, and `key = value` where value is a basic
 * string, a boolean or an array of basic strings. A basic string of printable ASCII is a JSON string.
 */
function parseTomlSubset(text: string): TomlDocument {
  const document: TomlDocument = { top: {}, tables: new Map(), arrays: [] };
  let current: TomlTable = document.top;
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.trim();
    const where = `line ${index + 1}: ${JSON.stringify(raw)}`;
    if (line === '' || line.startsWith('#')) return;
    const arrayHeader = /^\[\[([a-z][a-z.-]*)\]\]$/.exec(line);
    if (arrayHeader !== null) {
      current = {};
      document.arrays.push([arrayHeader[1] ?? '', current]);
      return;
    }
    const tableHeader = /^\[([a-z][a-z-]*(?:\."[^"\\]*")?)\]$/.exec(line);
    if (tableHeader !== null) {
      const name = tableHeader[1] ?? '';
      if (document.tables.has(name)) throw new Error(`duplicate table at ${where}`);
      current = {};
      document.tables.set(name, current);
      return;
    }
    const pair = /^([a-z][a-z_-]*) = (.+)$/.exec(line);
    if (pair === null) throw new Error(`not in the TOML subset at ${where}`);
    const [, key = '', valueText = ''] = pair;
    if (key in current) throw new Error(`duplicate key at ${where}`);
    let value: unknown;
    try {
      value = JSON.parse(valueText);
    } catch {
      throw new Error(`value is not a basic string, boolean or string array at ${where}`);
    }
    const isStringArray = Array.isArray(value) && value.every((item) => typeof item === 'string');
    if (typeof value !== 'string' && typeof value !== 'boolean' && !isStringArray) {
      throw new Error(`unexpected value type at ${where}`);
    }
    current[key] = value as TomlValue;
  });
  return document;
}

function fileAt(config: MirrorConfig, path: string): string {
  const file = config.files.find((f) => f.path === path);
  if (file === undefined) throw new Error(`no file ${path} in ${config.files.map((f) => f.path).join(', ')}`);
  return file.content;
}

describe('formatMirrorConfig: docker', () => {
  it('writes daemon.json with registry-mirrors and, for http, insecure-registries', () => {
    const config = formatMirrorConfig('docker', { url: 'http://mirror.local:5000/', registries: ['docker.io'] });
    expect(config.files.map((f) => f.path)).toEqual(['/etc/docker/daemon.json']);
    expect(JSON.parse(fileAt(config, '/etc/docker/daemon.json'))).toEqual({
      'registry-mirrors': ['http://mirror.local:5000'],
      'insecure-registries': ['mirror.local:5000'],
    });
    expect(config.notes.join('\n')).toMatch(/only ever mirrors Docker Hub/);
  });

  it('leaves insecure-registries out for https', () => {
    const config = formatMirrorConfig('docker', { url: 'https://mirror.local', registries: ['docker.io'] });
    expect(JSON.parse(fileAt(config, '/etc/docker/daemon.json'))).toEqual({
      'registry-mirrors': ['https://mirror.local'],
    });
  });

  it('explains, instead of configuring, registries other than Docker Hub', () => {
    const config = formatMirrorConfig('docker', {
      url: 'https://mirror.local:5000',
      registries: ['ghcr.io', 'quay.io'],
    });
    // Nothing docker could do with ghcr.io or quay.io, and https needs no insecure entry: no file at all.
    expect(config.files).toEqual([]);
    const notes = config.notes.join('\n');
    expect(notes).toContain('ghcr.io cannot be mirrored by docker: pull mirror.local:5000/ghcr.io/<repository>:<tag>');
    expect(notes).toContain('quay.io cannot be mirrored by docker');
  });

  it('mirrors Docker Hub and explains the rest when both are asked for', () => {
    const config = formatMirrorConfig('docker', { url: 'http://127.0.0.1:5000', registries: ['docker.io', 'ghcr.io'] });
    expect(JSON.parse(fileAt(config, '/etc/docker/daemon.json'))).toEqual({
      'registry-mirrors': ['http://127.0.0.1:5000'],
      'insecure-registries': ['127.0.0.1:5000'],
    });
    expect(config.notes.join('\n')).toContain('ghcr.io cannot be mirrored by docker');
    expect(config.notes.join('\n')).not.toContain('docker.io cannot');
  });
});

describe('formatMirrorConfig: containerd', () => {
  const config = formatMirrorConfig('containerd', {
    url: 'http://mirror.local:5000',
    registries: ['docker.io', 'ghcr.io', 'registry.local:5443'],
  });

  it('writes one hosts.toml per registry under /etc/containerd/certs.d', () => {
    expect(config.files.map((f) => f.path)).toEqual([
      '/etc/containerd/certs.d/docker.io/hosts.toml',
      '/etc/containerd/certs.d/ghcr.io/hosts.toml',
      '/etc/containerd/certs.d/registry.local:5443/hosts.toml',
    ]);
  });

  it.each([
    ['docker.io', 'https://registry-1.docker.io'],
    ['ghcr.io', 'https://ghcr.io'],
    ['registry.local:5443', 'https://registry.local:5443'],
  ])('%s: server %s, wharf as a pull and resolve host', (registry, server) => {
    const toml = parseTomlSubset(fileAt(config, `/etc/containerd/certs.d/${registry}/hosts.toml`));
    expect(toml.top).toEqual({ server });
    expect([...toml.tables]).toEqual([['host."http://mirror.local:5000"', { capabilities: ['pull', 'resolve'] }]]);
    expect(toml.arrays).toEqual([]);
  });

  it('says that containerd sends ns= and how CRI finds the files', () => {
    expect(fileAt(config, '/etc/containerd/certs.d/ghcr.io/hosts.toml')).toContain('?ns=ghcr.io');
    const notes = config.notes.join('\n');
    expect(notes).toContain('[plugins."io.containerd.grpc.v1.cri".registry] config_path = "/etc/containerd/certs.d"');
    expect(notes).toContain('[plugins."io.containerd.cri.v1.images".registry] config_path = "/etc/containerd/certs.d"');
    expect(notes).toContain('?ns=');
  });
});

describe('formatMirrorConfig: podman', () => {
  it('writes a registries.conf.d drop-in with a path-prefix mirror per registry', () => {
    const config = formatMirrorConfig('podman', {
      url: 'http://mirror.local:5000',
      registries: ['docker.io', 'ghcr.io'],
    });
    expect(config.files.map((f) => f.path)).toEqual(['/etc/containers/registries.conf.d/wharf.conf']);
    const toml = parseTomlSubset(fileAt(config, '/etc/containers/registries.conf.d/wharf.conf'));
    // A drop-in has no top-level keys: they would clash with the main registries.conf's.
    expect(toml.top).toEqual({});
    expect(toml.tables.size).toBe(0);
    expect(toml.arrays).toEqual([
      ['registry', { prefix: 'docker.io', location: 'docker.io' }],
      ['registry.mirror', { location: 'mirror.local:5000/docker.io', insecure: true }],
      ['registry', { prefix: 'ghcr.io', location: 'ghcr.io' }],
      ['registry.mirror', { location: 'mirror.local:5000/ghcr.io', insecure: true }],
    ]);
  });

  it('leaves insecure out for https', () => {
    const config = formatMirrorConfig('podman', { url: 'https://mirror.local', registries: ['quay.io'] });
    const toml = parseTomlSubset(fileAt(config, '/etc/containers/registries.conf.d/wharf.conf'));
    expect(toml.arrays).toEqual([
      ['registry', { prefix: 'quay.io', location: 'quay.io' }],
      ['registry.mirror', { location: 'mirror.local/quay.io' }],
    ]);
  });
});

describe('formatMirrorConfig: bad input', () => {
  it.each([
    ['not a url', /is not a URL/],
    ['ftp://mirror.local', /scheme must be http or https/],
    ['http://mirror.local:5000/v2', /without a path/],
    ['http://mirror.local:5000/?x=1', /without a path/],
    ['http://user:pw@mirror.local:5000', /credentials/],
  ])('rejects url %s', (url, message) => {
    expect(() => formatMirrorConfig('containerd', { url, registries: ['docker.io'] })).toThrow(message);
  });

  it.each([
    [[], /at least one/],
    [['Docker.io'], /not a lowercase registry host/],
    [['docker.io/library'], /not a lowercase registry host/],
    [['ghcr.io"\n[x]'], /not a lowercase registry host/],
    [['../etc'], /not a lowercase registry host/],
    [['ghcr.io', 'ghcr.io'], /listed twice/],
  ])('rejects registries %j', (registries, message) => {
    expect(() => formatMirrorConfig('podman', { url: 'http://mirror.local:5000', registries })).toThrow(message);
  });

  it('throws MirrorConfigError, so the CLI can print one line', () => {
    expect(() => formatMirrorConfig('docker', { url: 'nope', registries: ['docker.io'] })).toThrow(MirrorConfigError);
  });
});
