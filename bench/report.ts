/**
 * @module bench/report
 * Samples → median [min–max] cells, ratios, target checks, and the markdown table of results.md.
 */

export interface Samples {
  values: number[];
  unit: string;
  /** Decimal places shown. */
  digits: number;
}

export interface Row {
  scenario: string;
  wharf: Samples | string;
  distribution: Samples | string;
  /** nginx or the direct upstream pull, where the scenario has one. */
  reference?: { label: string; samples: Samples };
  target: string;
  /** undefined: no target for this row. */
  met?: boolean;
}

export function samples(values: number[], unit: string, digits: number): Samples {
  return { values, unit, digits };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatSamples(s: Samples | string): string {
  if (typeof s === 'string') return s;
  const unit = s.unit === '×' ? '×' : ` ${s.unit}`;
  const m = fmt(median(s.values), s.digits);
  if (s.values.length === 1) return `${m}${unit}`;
  return `${m}${unit} [${fmt(Math.min(...s.values), s.digits)}–${fmt(Math.max(...s.values), s.digits)}]`;
}

/** median(a) / median(b) */
export function ratio(a: Samples | string, b: Samples | string): number {
  if (typeof a === 'string' || typeof b === 'string') return Number.NaN;
  return median(a.values) / median(b.values);
}

function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${fmt(value, value >= 100 ? 0 : 2)}×` : '—';
}

export function renderTable(rows: readonly Row[]): string {
  const header = [
    'scenario',
    'wharf median [min–max]',
    'distribution median [min–max]',
    'wharf / distribution',
    'reference',
    'wharf / reference',
    'target',
    'met',
  ];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) {
    const cells = [
      row.scenario,
      formatSamples(row.wharf),
      formatSamples(row.distribution),
      formatRatio(ratio(row.wharf, row.distribution)),
      row.reference === undefined ? '—' : `${row.reference.label}: ${formatSamples(row.reference.samples)}`,
      row.reference === undefined ? '—' : formatRatio(ratio(row.wharf, row.reference.samples)),
      row.target,
      row.met === undefined ? '—' : row.met ? '✓' : '✗ **short**',
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** One line per row whose target wharf missed, with the figure that missed it. */
export function shortfalls(rows: readonly Row[]): string[] {
  return rows
    .filter((row) => row.met === false)
    .map((row) => {
      const vs = [
        `distribution ${formatSamples(row.distribution)}`,
        ...(row.reference === undefined ? [] : [`${row.reference.label} ${formatSamples(row.reference.samples)}`]),
      ].join(', ');
      return `${row.scenario}: wharf ${formatSamples(row.wharf)} vs ${vs}; target ${row.target}.`;
    });
}
