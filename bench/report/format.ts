/** Number formatting for the table, progress lines and the chart. */
import type { Summary } from '../stats.js';

export function formatValue(v: number, digits: number): string {
  if (!Number.isFinite(v)) return '–';
  return v.toFixed(digits);
}

/** `median [min..max]`, or just the value for a single run. */
export function formatSummary(s: Summary | undefined, digits: number): string {
  if (s === undefined || s.n === 0) return '–';
  const med = formatValue(s.median, digits);
  return s.n === 1 ? med : `${med} [${formatValue(s.min, digits)}..${formatValue(s.max, digits)}]`;
}
