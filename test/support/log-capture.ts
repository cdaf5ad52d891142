/**
 * @module test/support/log-capture
 * A real pino logger writing JSON lines into memory, so a test can read what a server logged.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface LogLine {
  level: number;
  msg?: string;
  err?: { stack?: string; message?: string };
  [key: string]: unknown;
}

export interface LogCapture {
  logger: Logger;
  lines: LogLine[];
  /** Lines at or above a pino level number (warn is 40). */
  atLeast(level: number): LogLine[];
  /** Resolves once no line was written for quietMs (the server finished reacting), or throws after deadlineMs. */
  quiet(quietMs?: number, deadlineMs?: number): Promise<void>;
}

export function captureLog(level: pino.LevelWithSilent = 'debug'): LogCapture {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const logger = pino({ level }, stream);
  return {
    logger,
    lines,
    atLeast: (min) => lines.filter((line) => line.level >= min),
    quiet: async (quietMs = 300, deadlineMs = 10_000) => {
      const deadline = Date.now() + deadlineMs;
      for (let seen = -1; seen !== lines.length;) {
        if (Date.now() > deadline) throw new Error(`log still busy after ${deadlineMs} ms`);
        seen = lines.length;
        await new Promise((resolve) => setTimeout(resolve, quietMs));
      }
    },
  };
}
