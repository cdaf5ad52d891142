/**
 * @module test/support/spawn-wharf
 * Runs the real `wharf` command line as a child process (through tsx, so the
 * sources are what runs), for tests that need a process to kill, signal or measure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface SpawnedWharf {
  child: ChildProcess;
  url: string;
  host: string;
  output(): string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `wharf <args>` to completion, with a deadline. `input` is written to its stdin (as `… | wharf`
 * runs); `stdoutFd` sends its stdout straight into that file (as a shell's `>` does), and `stdout` is
 * then empty.
 */
export function runWharf(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; input?: Buffer; stdoutFd?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...options.env },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', options.stdoutFd ?? 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    if (options.input !== undefined) child.stdin?.end(options.input);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wharf ${args.join(' ')} did not finish in time; stderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `wharf serve` on 127.0.0.1:0 and waits for its "listening on" line. */
export function spawnWharf(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<SpawnedWharf> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', mainTs, 'serve', '--listen', '127.0.0.1:0', '--log-level', 'warn', ...args],
    {
      cwd: repoRoot,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wharf serve did not start in time; output: ${out}`));
    }, options.timeoutMs ?? 20_000);
    const onData = (data: Buffer): void => {
      out += data.toString();
      const match = /listening on (https?):\/\/([\d.]+):(\d+)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        const host = `${match[2]}:${match[3]}`;
        resolve({
          child,
          url: `${match[1]}://${host}`,
          host,
          output: () => out,
          exited,
          kill: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`wharf serve exited with ${code} before listening; output: ${out}`));
    });
  });
}
