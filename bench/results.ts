/** The shapes of what the bench measures and writes to latest.json. */
import type { Summary } from './stats.js';

export interface MetricDef {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly digits: number;
  readonly better: 'lower' | 'higher';
  /** A headline figure: printed in progress lines and charted as a tsproxy/peer ratio. */
  readonly headline: boolean;
}

export interface RunRecord {
  readonly run: number;
  /** Busy % of the whole machine (all CPUs) over this subject's run, from /proc/stat. */
  readonly busyPct: number;
  readonly values: Readonly<Record<string, number>>;
}

export interface SubjectResult {
  readonly name: string;
  readonly tsproxy: boolean;
  /** Ratios compare tsproxy with peers of the same group. */
  readonly group: string;
  skipped: string | null;
  readonly errors: string[];
  readonly runs: RunRecord[];
  summary: Record<string, Summary>;
  busy: Summary | null;
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly params: Readonly<Record<string, string | number>>;
  readonly metrics: readonly MetricDef[];
  readonly subjects: readonly SubjectResult[];
  readonly notes: readonly string[];
}

/** A metric definition (headline defaults to false). */
export function metric(
  key: string,
  label: string,
  unit: string,
  digits: number,
  better: 'lower' | 'higher',
  headline = false,
): MetricDef {
  return { key, label, unit, digits, better, headline };
}
