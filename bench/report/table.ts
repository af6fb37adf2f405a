/** The stdout table: one block per scenario, a row per metric and a column per subject. */
import type { ScenarioResult } from '../results.js';
import { formatSummary } from './format.js';

function pad(s: string, w: number): string {
  return s + ' '.repeat(Math.max(0, w - [...s].length));
}

function grid(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows.map((r) => r.map((c, i) => pad(c, widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function formatScenario(sc: ScenarioResult): string {
  const ran = sc.subjects.filter((s) => s.skipped === null);
  const params = Object.entries(sc.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  let out = `\n== ${sc.title} (${params})\n`;
  if (ran.length > 0) {
    const rows: string[][] = [['', ...ran.map((s) => s.name)]];
    for (const m of sc.metrics) {
      if (ran.every((s) => (s.summary[m.key]?.n ?? 0) === 0)) continue;
      rows.push([`${m.label} (${m.unit})`, ...ran.map((s) => formatSummary(s.summary[m.key], m.digits))]);
    }
    rows.push(['machine busy (%)', ...ran.map((s) => formatSummary(s.busy ?? undefined, 0))]);
    rows.push(['runs ok', ...ran.map((s) => `${s.runs.length}${s.errors.length > 0 ? ` (${s.errors.length} failed)` : ''}`)]);
    out += grid(rows) + '\n';
  }
  for (const s of sc.subjects) {
    if (s.skipped !== null) out += `  skipped ${s.name}: ${s.skipped.split('\n')[0] ?? ''}\n`;
    for (const e of s.errors) out += `  error ${s.name}: ${e.split('\n')[0] ?? ''}\n`;
  }
  for (const n of sc.notes) out += `  note: ${n}\n`;
  return out;
}
