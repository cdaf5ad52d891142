/**
 * @module test/support/run
 * Runs real client binaries (skopeo, ctr, podman) with a hard deadline, and bounds any other awaited event.
 */
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Kill the process (SIGKILL) and reject after this long. */
  timeoutMs: number;
  /** Added to process.env, not a replacement: the clients need PATH, HOME and friends. */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to stdin, which is then closed; stdin is closed at once without it. */
  input?: string | Buffer;
}

export interface RunResult {
  /** Exact bytes: `skopeo inspect --raw` output is hashed, so it must not pass through a string. */
  stdoutBuffer: Buffer;
  stdout: string;
  stderr: string;
}

export class RunError extends Error {
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(message);
    this.name = 'RunError';
  }
}

function shellLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((part) => (/^[\w@%+=:,./-]+$/.test(part) ? part : `'${part}'`)).join(' ');
}

/**
 * Spawns `cmd args`, resolves with its output on exit code 0, rejects with the full stderr otherwise,
 * and kills it when it outlives `timeoutMs` so a hung client fails the test by name instead of by vitest's timer.
 */
export function run(cmd: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const commandLine = shellLine(cmd, args);
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env === undefined ? process.env : { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    // A child that exits before reading its stdin makes the write fail with EPIPE; the exit code tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);

    child.on('error', (error: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const hint = error.code === 'ENOENT' ? ` (is "${cmd}" installed and on PATH?)` : '';
      reject(new RunError(`${commandLine}: failed to start: ${error.message}${hint}`, '', '', null));
    });

    // 'close' rather than 'exit': it fires after stdout and stderr are drained, so no output is lost.
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const stdoutBuffer = Buffer.concat(out);
      const stdout = stdoutBuffer.toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(
          new RunError(
            `${commandLine}: timed out after ${options.timeoutMs} ms\nstderr:\n${stderr}`,
            stdout,
            stderr,
            code,
          ),
        );
      } else if (code !== 0) {
        const status = signal === null ? `exit code ${code}` : `signal ${signal}`;
        reject(new RunError(`${commandLine}: ${status}\nstderr:\n${stderr}`, stdout, stderr, code));
      } else {
        resolve({ stdoutBuffer, stdout, stderr });
      }
    });
  });
}

/**
 * Rejects with `name` if `promise` has not settled within `ms`. Every await on an event (a server
 * listening, a process exiting) goes through this so that a hang reports what it was waiting for.
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline: ${name} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
