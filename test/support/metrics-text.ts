/**
 * @module test/support/metrics-text
 * Reading Prometheus' text exposition in tests.
 */

/** The sum of every series of `name` whose labels include `labels` (0 when there is none). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = new Map([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => have.get(key) === value)) total += Number(match[3]);
  }
  return total;
}
