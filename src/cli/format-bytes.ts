/**
 * @module cli/format-bytes
 * Byte counts for people: 1536 → "1.5 KiB".
 */

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  // 1 048 500 B is "1.0 MiB", not "1024.0 KiB": the unit is the one its one-decimal rounding fits.
  while (value >= 1023.95 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
