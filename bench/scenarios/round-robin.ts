/**
 * The round-robin runner every scenario uses: run 1 of every subject (tsproxy first, then the
 * peers), then run 2 of every subject, and so on, so that slow drifts on the shared machine hit
 * all subjects alike. Each run logs the machine's busy % from /proc/stat. A subject that cannot
 * start is skipped with its reason; a failed run is recorded as an error and the rest go on.
 */
import type { BenchContext } from '../context.js';
import { busyPercent, machineTimes } from '../procfs.js';
import type { MetricDef, SubjectResult } from '../results.js';
import { summarize } from '../stats.js';
import { SkipError, type Started } from '../subjects/types.js';
import { formatValue } from '../report/format.js';

export interface Running extends Started {
  /**
   * Unmeasured traffic right after start (JIT, lazy host lookups); a no-op where a fresh process is
   * the point. Resolves with what went wrong, if anything, for the progress line.
   */
  warm(): Promise<string | null>;
  /** One run; returns the metric values it measured. */
  measure(run: number): Promise<Record<string, number>>;
}

export interface SubjectSpec {
  readonly name: string;
  readonly tsproxy: boolean;
  readonly group: string;
  start(): Promise<Running>;
}

export interface RoundRobinOptions {
  readonly scenario: string;
  readonly metrics: readonly MetricDef[];
  /** Start and stop each subject around every run (memory runs need a fresh process). */
  readonly fresh: boolean;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function headline(metrics: readonly MetricDef[], values: Record<string, number>): string {
  return metrics
    .filter((m) => m.headline && Number.isFinite(values[m.key]))
    .map((m) => `${m.label} ${formatValue(values[m.key] ?? Number.NaN, m.digits)} ${m.unit}`)
    .join(', ');
}

async function startOrSkip(ctx: BenchContext, o: RoundRobinOptions, spec: SubjectSpec, res: SubjectResult): Promise<Running | null> {
  try {
    const r = await spec.start();
    const trouble = await r.warm();
    if (trouble !== null) ctx.progress(`${o.scenario}: ${spec.name} warm-up: ${trouble}`);
    return r;
  } catch (err) {
    res.skipped = reason(err);
    ctx.progress(`${o.scenario}: ${spec.name} skipped: ${res.skipped}`);
    if (!(err instanceof SkipError)) process.stderr.write(`${err instanceof Error ? (err.stack ?? '') : ''}\n`);
    return null;
  }
}

export async function roundRobin(ctx: BenchContext, specs: readonly SubjectSpec[], o: RoundRobinOptions): Promise<SubjectResult[]> {
  const results: SubjectResult[] = specs.map((s) => ({
    name: s.name,
    tsproxy: s.tsproxy,
    group: s.group,
    skipped: null,
    errors: [],
    runs: [],
    summary: {},
    busy: null,
  }));
  const running: (Running | null)[] = [];
  try {
    if (!o.fresh) {
      for (const [i, spec] of specs.entries()) running[i] = await startOrSkip(ctx, o, spec, results[i] as SubjectResult);
    }
    for (let run = 1; run <= ctx.opts.runs; run++) {
      for (const [i, spec] of specs.entries()) {
        const res = results[i] as SubjectResult;
        if (res.skipped !== null) continue;
        const r = o.fresh ? await startOrSkip(ctx, o, spec, res) : (running[i] ?? null);
        if (r === null) continue;
        try {
          const m0 = machineTimes();
          const values = await r.measure(run);
          const busyPct = busyPercent(m0, machineTimes());
          res.runs.push({ run, busyPct, values });
          ctx.progress(`${o.scenario} ${run}/${ctx.opts.runs} ${spec.name}: ${headline(o.metrics, values)} (busy ${busyPct.toFixed(0)}%)`);
        } catch (err) {
          res.errors.push(`run ${run}: ${reason(err)}`);
          ctx.progress(`${o.scenario} ${run}/${ctx.opts.runs} ${spec.name}: FAILED: ${reason(err)}`);
        } finally {
          if (o.fresh) await r.stop();
        }
      }
    }
  } finally {
    for (const r of running) if (r !== null && r !== undefined) await r.stop();
  }
  for (const res of results) {
    for (const m of o.metrics) res.summary[m.key] = summarize(res.runs.map((r) => r.values[m.key] ?? Number.NaN));
    res.busy = res.runs.length > 0 ? summarize(res.runs.map((r) => r.busyPct)) : null;
  }
  return results;
}
