/**
 * Scenario 3, plain CONNECT through one proxy to the sink: sequential --n CONNECTs timed from
 * connect() to the 200 head (then closed), --conc loops for --secs for CPU per CONNECT, and one
 * --bytes upload through a CONNECT tunnel for CPU s/GB. Peers: squid, tinyproxy, ATS (no plugin).
 */
import { startNodeConnect } from '../baseline/launch.js';
import type { Route } from '../clients/wire.js';
import type { BenchContext } from '../context.js';
import { measured, runClient } from '../measure.js';
import { metric, type ScenarioResult } from '../results.js';
import { startAtsConnect } from '../subjects/ats.js';
import { startSquid } from '../subjects/squid.js';
import { startTinyproxy } from '../subjects/tinyproxy.js';
import { startTsproxyConnect } from '../subjects/tsproxy.js';
import type { Listening, Started } from '../subjects/types.js';
import { bulkTimeoutMs, type PushResult } from './bridge-bulk.js';
import { cpuUsPer, measuredLoop, warmEcho } from './loops.js';
import { roundRobin, type Running, type SubjectSpec } from './round-robin.js';
import { startSink, type SinkPorts } from './sink.js';

const METRICS = [
  metric('seq_p50', 'CONNECT p50', 'ms', 3, 'lower', true),
  metric('seq_p99', 'CONNECT p99', 'ms', 3, 'lower', true),
  metric('seq_cpu_us', 'CPU/CONNECT seq', 'µs', 0, 'lower'),
  metric('conc_cpu_us', 'CPU/CONNECT conc', 'µs', 0, 'lower', true),
  metric('conc_rate', 'CONNECT/s conc', '/s', 0, 'higher'),
  metric('bulk_cpu', 'bulk CPU', 's/GB', 2, 'lower', true),
  metric('bulk_mbps', 'bulk', 'MB/s', 0, 'higher'),
  metric('rss_mb', 'RSS', 'MB', 1, 'lower'),
];

function connectRunning(ctx: BenchContext, sink: SinkPorts, host: string, port: number, s: Started): Running {
  const route = (target: number): Route => ({ host, port, tls: null, connect: `127.0.0.1:${target}` });
  const { bytes } = ctx.opts;
  const { procs } = s;
  const measure = async (): Promise<Record<string, number>> => {
    const args = ['--route', JSON.stringify(route(sink.echo)), '--until', 'reply'];
    const seq = await measuredLoop(ctx, procs, 'connbench', args, 'seq');
    const conc = await measuredLoop(ctx, procs, 'connbench', args, 'conc');
    const pushArgs = ['--route', JSON.stringify(route(sink.data)), '--bytes', String(bytes), '--dir', 'up'];
    const bulk = await measured(procs, () => runClient<PushResult>(ctx, 'push', pushArgs, bulkTimeoutMs(bytes)));
    return {
      seq_p50: seq.result.p50,
      seq_p99: seq.result.p99,
      seq_cpu_us: cpuUsPer(seq.cpuTotalS, seq.result),
      conc_cpu_us: cpuUsPer(conc.cpuTotalS, conc.result),
      conc_rate: conc.result.rate,
      bulk_cpu: bulk.cpuTotalS / (bytes / 1e9),
      bulk_mbps: bulk.result.mbps,
      rss_mb: bulk.rssTotalKb / 1024,
    };
  };
  return { procs, stop: s.stop, warm: () => warmEcho(ctx, route(sink.echo)), measure };
}

export async function runConnect(ctx: BenchContext): Promise<ScenarioResult> {
  const sink = await startSink(ctx, 0);
  const peer = (name: string, start: () => Promise<Listening>): SubjectSpec => ({
    name,
    tsproxy: false,
    group: 'connect',
    start: async () => {
      const s = await start();
      return connectRunning(ctx, sink, '127.0.0.1', s.port, s);
    },
  });
  const specs: SubjectSpec[] = [
    {
      name: 'tsproxy',
      tsproxy: true,
      group: 'connect',
      start: async () => {
        const s = await startTsproxyConnect(ctx);
        return connectRunning(ctx, sink, s.entry.host, s.entry.port, s);
      },
    },
    peer('squid', () => startSquid(ctx)),
    peer('tinyproxy', () => startTinyproxy(ctx)),
    peer('ats', () => startAtsConnect(ctx)),
  ];
  if (ctx.opts.nodeBaseline) specs.push(peer('node-min', () => startNodeConnect(ctx)));
  try {
    const subjects = await roundRobin(ctx, specs, { scenario: 'connect', metrics: METRICS, fresh: false });
    return {
      id: 'connect',
      title: '3. Plain CONNECT through one proxy',
      params: { n: ctx.opts.n, conc: ctx.opts.conc, secs: ctx.opts.secs, bytes: ctx.opts.bytes, runs: ctx.opts.runs },
      metrics: METRICS,
      subjects,
      notes: [
        'CONNECT p50/p99 = connect() until the 200 head, sequential; the tunnel is then closed',
        'CPU/CONNECT = proxy utime+stime per completed CONNECT; bulk = one upload tunnel, CPU per GB (10^9 bytes)',
      ],
    };
  } finally {
    await sink.stop();
  }
}
