/**
 * Scenario 2, bridge set-up: fresh tunnels through the bridge to the sink's echo port. A set-up is
 * timed from connect() until a 1-byte echo returns through the whole chain (equal work for CONNECT
 * bridges and the transparent stunnel pair); CONNECT bridges also report connect() -> 200.
 * Sequential --n tunnels for latency, then --conc loops for --secs for CPU per tunnel.
 */
import type { BenchContext } from '../context.js';
import { metric, type ScenarioResult } from '../results.js';
import { bridgeSubjects, type BridgeMeasure } from './bridge-subjects.js';
import { cpuUsPer, measuredLoop } from './loops.js';
import { roundRobin } from './round-robin.js';
import { startSink } from './sink.js';

const METRICS = [
  metric('seq_p50', 'set-up p50', 'ms', 2, 'lower', true),
  metric('seq_p99', 'set-up p99', 'ms', 2, 'lower'),
  metric('reply_p50', 'to 200 p50', 'ms', 2, 'lower'),
  metric('seq_cpu_us', 'CPU/tunnel seq', 'µs', 0, 'lower'),
  metric('conc_cpu_us', 'CPU/tunnel conc', 'µs', 0, 'lower', true),
  metric('conc_in_cpu_us', 'ingress', 'µs', 0, 'lower'),
  metric('conc_out_cpu_us', 'peer', 'µs', 0, 'lower'),
  metric('conc_rate', 'tunnels/s conc', '/s', 0, 'higher'),
  metric('conc_p50', 'p50 conc', 'ms', 1, 'lower'),
  metric('rss_mb', 'RSS both', 'MB', 1, 'lower'),
];

export async function runBridgeSetup(ctx: BenchContext): Promise<ScenarioResult> {
  const sink = await startSink(ctx, 0);
  try {
    const measure: BridgeMeasure = (routes, procs) => async () => {
      const args = ['--route', JSON.stringify(routes.echo), '--until', 'echo'];
      const seq = await measuredLoop(ctx, procs, 'connbench', args, 'seq');
      const conc = await measuredLoop(ctx, procs, 'connbench', args, 'conc');
      return {
        seq_p50: seq.result.p50,
        seq_p99: seq.result.p99,
        reply_p50: seq.result.replyP50 ?? Number.NaN,
        seq_cpu_us: cpuUsPer(seq.cpuTotalS, seq.result),
        conc_cpu_us: cpuUsPer(conc.cpuTotalS, conc.result),
        conc_in_cpu_us: cpuUsPer(conc.cpuS.in, conc.result),
        conc_out_cpu_us: cpuUsPer(conc.cpuS.out, conc.result),
        conc_rate: conc.result.rate,
        conc_p50: conc.result.p50,
        rss_mb: conc.rssTotalKb / 1024,
      };
    };
    const subjects = await roundRobin(ctx, bridgeSubjects(ctx, sink, measure), {
      scenario: 'bridge-setup',
      metrics: METRICS,
      fresh: false,
    });
    return {
      id: 'bridge-setup',
      title: '2. Bridge set-up: fresh tunnels, connect() to 1-byte echo through the chain',
      params: { n: ctx.opts.n, conc: ctx.opts.conc, secs: ctx.opts.secs, runs: ctx.opts.runs },
      metrics: METRICS,
      subjects,
      notes: [
        'set-up = connect() until a 1-byte echo returns from the sink through ingress and peer (one mTLS handshake per tunnel)',
        'to 200 = connect() until the CONNECT reply head (CONNECT-speaking bridges only)',
        'CPU/tunnel = ingress + peer utime+stime per completed tunnel',
      ],
    };
  } finally {
    await sink.stop();
  }
}
