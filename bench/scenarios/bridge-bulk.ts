/**
 * Scenario 1, bridge bulk: client -> ingress -> mutual TLS -> peer -> sink, one connection moving
 * --bytes upload (client to sink) and download (sink to client). Headline: CPU seconds per GB
 * (10^9 bytes) of ingress + peer together.
 */
import type { BenchContext } from '../context.js';
import { measured, runClient } from '../measure.js';
import { metric, type ScenarioResult } from '../results.js';
import { bridgeSubjects, type BridgeMeasure } from './bridge-subjects.js';
import { roundRobin } from './round-robin.js';
import { startSink } from './sink.js';

export interface PushResult {
  readonly bytes: number;
  readonly secs: number;
  readonly mbps: number;
  readonly clientCpuS: number;
}

/** Generous client time limit for a bulk transfer: 20 MB/s worst case plus 30 s. */
export function bulkTimeoutMs(bytes: number): number {
  return (bytes / 20e6 + 30) * 1000;
}

const METRICS = [
  metric('up_cpu', 'up CPU', 's/GB', 2, 'lower', true),
  metric('up_in_cpu', 'up CPU ingress', 's/GB', 2, 'lower'),
  metric('up_out_cpu', 'up CPU peer', 's/GB', 2, 'lower'),
  metric('up_mbps', 'up', 'MB/s', 0, 'higher'),
  metric('down_cpu', 'down CPU', 's/GB', 2, 'lower', true),
  metric('down_in_cpu', 'down CPU ingress', 's/GB', 2, 'lower'),
  metric('down_out_cpu', 'down CPU peer', 's/GB', 2, 'lower'),
  metric('down_mbps', 'down', 'MB/s', 0, 'higher'),
  metric('rss_mb', 'RSS both', 'MB', 1, 'lower'),
  metric('hwm_mb', 'peak RSS both', 'MB', 1, 'lower'),
];

/** A peer that stayed idle while the ingress moved the bytes means the bridge did not engage. */
function checkBothSidesWorked(cpuS: Readonly<Record<string, number>>): void {
  const inS = cpuS.in ?? 0;
  const outS = cpuS.out ?? 0;
  if (inS > 0.05 && outS < inS * 0.1) {
    throw new Error(`the peer used ${outS.toFixed(2)} CPU s against the ingress's ${inS.toFixed(2)}: traffic bypassed the peer`);
  }
}

export async function runBridgeBulk(ctx: BenchContext): Promise<ScenarioResult> {
  const { bytes } = ctx.opts;
  const gb = bytes / 1e9;
  const sink = await startSink(ctx, 0);
  try {
    const measure: BridgeMeasure = (routes, procs) => async () => {
      const values: Record<string, number> = {};
      for (const dir of ['up', 'down'] as const) {
        const args = ['--route', JSON.stringify(routes.data), '--bytes', String(bytes), '--dir', dir];
        const m = await measured(procs, () => runClient<PushResult>(ctx, 'push', args, bulkTimeoutMs(bytes)));
        checkBothSidesWorked(m.cpuS);
        values[`${dir}_cpu`] = m.cpuTotalS / gb;
        values[`${dir}_in_cpu`] = (m.cpuS.in ?? Number.NaN) / gb;
        values[`${dir}_out_cpu`] = (m.cpuS.out ?? Number.NaN) / gb;
        values[`${dir}_mbps`] = m.result.mbps;
        values.rss_mb = m.rssTotalKb / 1024;
        values.hwm_mb = m.hwmTotalKb / 1024;
      }
      return values;
    };
    const subjects = await roundRobin(ctx, bridgeSubjects(ctx, sink, measure), {
      scenario: 'bridge-bulk',
      metrics: METRICS,
      fresh: false,
    });
    return {
      id: 'bridge-bulk',
      title: '1. Bridge bulk: client -> ingress -> mTLS -> peer -> sink',
      params: { bytes, runs: ctx.opts.runs },
      metrics: METRICS,
      subjects,
      notes: ['CPU = utime+stime of ingress + peer over the transfer, per GB (10^9 bytes); one connection per transfer'],
    };
  } finally {
    await sink.stop();
  }
}
