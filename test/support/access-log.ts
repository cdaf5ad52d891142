/**
 * @module test/support/access-log
 * Reads CNCF distribution's combined access log lines: what the upstream was asked, counted.
 */
export interface AccessLine {
  method: string;
  path: string;
  status: number;
}

const line = /^\S+ - - \[[^\]]+\] "(\w+) (\S+) HTTP\/[\d.]+" (\d{3}) /;

export function accessLines(logs: string): AccessLine[] {
  return logs.split('\n').flatMap((text) => {
    const match = line.exec(text);
    return match === null ? [] : [{ method: match[1] ?? '', path: match[2] ?? '', status: Number(match[3]) }];
  });
}

/** How many times the upstream was asked `method` on exactly this path (query ignored). */
export function countRequests(logs: string, method: string, path: string): number {
  return accessLines(logs).filter((l) => l.method === method && l.path.split('?')[0] === path).length;
}

/** Paths of the requests `settledLogs()` sends to find the end of the log; never counted. */
export const logMarkerPrefix = '/v2/wharf-test-log-marker/';

/** Every request on exactly this path (query ignored), whatever the method: GET, HEAD or other. */
export function countAnyRequests(logs: string, path: string): number {
  return accessLines(logs).filter((l) => l.path.split('?')[0] === path).length;
}

/** Every request but the log markers: what "the upstream was not asked anything" counts. */
export function realRequests(logs: string): AccessLine[] {
  return accessLines(logs).filter((l) => !l.path.startsWith(logMarkerPrefix));
}
