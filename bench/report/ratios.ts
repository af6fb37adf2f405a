/** tsproxy / peer ratios of the headline metrics, per scenario and group. */
import type { ScenarioResult } from '../results.js';

export interface Ratio {
  readonly scenario: string;
  readonly metric: string;
  readonly label: string;
  readonly unit: string;
  readonly subject: string;
  readonly peer: string;
  readonly tsproxyValue: number;
  readonly peerValue: number;
  /** tsproxy median / peer median: below 1.0 tsproxy is better (all headline metrics are lower-is-better). */
  readonly ratio: number;
}

export function computeRatios(results: readonly ScenarioResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const sc of results) {
    for (const m of sc.metrics.filter((x) => x.headline)) {
      for (const ts of sc.subjects.filter((s) => s.tsproxy && s.skipped === null)) {
        for (const peer of sc.subjects.filter((s) => !s.tsproxy && s.group === ts.group && s.skipped === null)) {
          const a = ts.summary[m.key]?.median ?? Number.NaN;
          const b = peer.summary[m.key]?.median ?? Number.NaN;
          if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) continue;
          out.push({
            scenario: sc.id,
            metric: m.key,
            label: m.label,
            unit: m.unit,
            subject: ts.name,
            peer: peer.name,
            tsproxyValue: a,
            peerValue: b,
            ratio: a / b,
          });
        }
      }
    }
  }
  return out;
}
