/**
 * Logs a person reads on a terminal are one readable line per record; anything else (a pipe, a
 * file, journald, the tests' spawned servers) gets JSON lines (issue 9: "a pretty form when stdout is
 * a terminal").
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/cli/config.js';
import { makeLogger, type LogOutput } from '../src/cli/make-logger.js';
import { withDeadline } from './support/run.js';
import { repoRoot } from './support/spawn-wharf.js';

function capture(tty: boolean): { out: LogOutput; text(): string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
  if (tty) stream.isTTY = true;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { out: stream, text: () => text };
}

const ansi = /\x1b\[[0-9;]*m/g;

describe('log format', () => {
  it('writes JSON lines to a pipe when auto, and readable lines when pretty', () => {
    const piped = capture(false);
    makeLogger('info', 'auto', piped.out).info({ repository: 'team/app' }, 'request');
    const json = JSON.parse(piped.text().trim()) as Record<string, unknown>;
    expect(json).toMatchObject({ level: 30, msg: 'request', repository: 'team/app' });

    const forced = capture(false);
    makeLogger('info', 'pretty', forced.out).info({ repository: 'team/app' }, 'request');
    const text = forced.text();
    expect(text.startsWith('{')).toBe(false);
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request\n {4}repository: "team\/app"\n$/);
    // Not colored where the output is not a terminal.
    expect(text).not.toMatch(ansi);
  });

  it('is pretty and colored on a terminal when auto, and json forces JSON there', () => {
    const terminal = capture(true);
    makeLogger('info', 'auto', terminal.out).warn('disk almost full');
    expect(terminal.text()).toMatch(ansi);
    expect(terminal.text().replace(ansi, '')).toMatch(/WARN: disk almost full\n$/);

    const json = capture(true);
    makeLogger('info', 'json', json.out).warn('disk almost full');
    expect(JSON.parse(json.text())).toMatchObject({ level: 40, msg: 'disk almost full' });
  });

  it('keeps the level it is given (log.level), on standard output as on another stream', () => {
    // Standard output is the default destination (serve's): nothing is written at these levels here.
    expect(makeLogger('debug', 'json').level).toBe('debug');
    expect(makeLogger('warn', 'auto').level).toBe('warn');
    const quiet = capture(false);
    const logger = makeLogger('warn', 'json', quiet.out);
    logger.info('not shown');
    logger.warn('shown');
    expect(
      quiet
        .text()
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { msg: string }).msg),
    ).toEqual(['shown']);
  });

  it('refuses an unknown format with the key and the choices', () => {
    expect(() => loadConfig({ env: { WHARF_LOG_FORMAT: 'text' }, flags: {} })).toThrow(
      'WHARF_LOG_FORMAT: expected one of auto, json, pretty, got "text"',
    );
    expect(loadConfig({ env: {}, flags: {} }).logFormat).toBe('auto');
  });

  it('wharf serve under a pseudo-terminal prints its banner as a readable line', async () => {
    const data = await mkdtemp(join(tmpdir(), 'wharf-tty-'));
    const command = [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'serve', '--listen', '127.0.0.1:0']
      .concat(['--data', data])
      .join(' ');
    // script(1) runs the command with a pseudo-terminal as its stdout and copies what it writes to ours.
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    try {
      await withDeadline(
        new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            if (/listening on http:\/\/127\.0\.0\.1:\d+/.test(out.replace(ansi, ''))) resolve();
          });
          child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
        }),
        30_000,
        'the banner under a pseudo-terminal',
      );
      const banner = out
        .replace(ansi, '')
        .split(/\r?\n/)
        .find((line) => line.includes('listening on'));
      expect(banner).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: wharf listening on http:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(ansi);
    } finally {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      await rm(data, { recursive: true, force: true });
    }
  }, 60_000);
});
