/**
 * @module cli/make-logger
 * The process logger: JSON lines for machines (log collectors, the tests' spawned servers), or
 * pino-pretty's one readable line per record when a person watches a terminal. `auto`, the
 * default, picks pretty only when the output is a TTY, so piping wharf to a file or to
 * journald still gets JSON. Pretty output is formatted in this thread (no worker transport):
 * an interactive terminal does not log fast enough for that to matter, and start-up stays quick.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export const logFormats = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof logFormats)[number];

export interface LogOutput extends NodeJS.WritableStream {
  isTTY?: boolean;
}

export function makeLogger(level: string, format: LogFormat, out: LogOutput = process.stdout): Logger {
  const readable = format === 'pretty' || (format === 'auto' && out.isTTY === true);
  if (!readable) return out === process.stdout ? pino({ level }) : pino({ level }, out);
  return pino(
    { level },
    pretty({
      destination: out,
      sync: true,
      colorize: out.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    }),
  );
}
