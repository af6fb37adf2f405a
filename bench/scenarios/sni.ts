/**
 * Scenario 4, SNI routing: a TLS backend (the sink on two ports, certificate for a..d.test),
 * routes a.test/c.test -> port 1 and b.test/d.test -> port 2. Sequential --n full TLS 1.3
 * handshakes rotating the SNI (latency, router CPU per routed handshake; the latency ratio is
 * against going direct in the same round), then one --bytes TLS upload with SNI b.test (router
 * CPU s/GB). Peers: HAProxy (req.ssl_sni, nbthread 1), nginx ssl_preread.
 */
import { startNodeSni } from '../baseline/launch.js';
import type { BenchContext } from '../context.js';
import { measured, runClient } from '../measure.js';
import { SERVER_CN, SNI_NAMES } from '../pki.js';
import { metric, type ScenarioResult } from '../results.js';
import { startHaproxySni } from '../subjects/haproxy.js';
import { startNginxSni } from '../subjects/nginx.js';
import { startTsproxySni } from '../subjects/tsproxy.js';
import type { Listening, ProxyProc, SniRoute, Started } from '../subjects/types.js';
import { bulkTimeoutMs, type PushResult } from './bridge-bulk.js';
import { cpuUsPer, measuredLoop, warmUp } from './loops.js';
import { roundRobin, type Running, type SubjectSpec } from './round-robin.js';
import { startSink } from './sink.js';

const METRICS = [
  metric('hs_p50', 'handshake p50', 'ms', 2, 'lower'),
  metric('hs_p99', 'handshake p99', 'ms', 2, 'lower'),
  metric('ratio_p50', 'p50 vs direct', '×', 2, 'lower', true),
  metric('ratio_p99', 'p99 vs direct', '×', 2, 'lower'),
  metric('cpu_us', 'router CPU/handshake', 'µs', 0, 'lower', true),
  metric('hs_rate', 'handshakes/s', '/s', 0, 'higher'),
  metric('bulk_cpu', 'bulk CPU', 's/GB', 2, 'lower', true),
  metric('bulk_mbps', 'bulk', 'MB/s', 0, 'higher'),
  metric('rss_mb', 'RSS', 'MB', 1, 'lower'),
];

const BULK_SNI = 'b.test';

/** The direct p50/p99 of the current round, which the routers' latency ratios divide by. */
interface DirectRound {
  p50: number;
  p99: number;
}

async function measureSni(ctx: BenchContext, host: string, port: number, procs: readonly ProxyProc[], direct: DirectRound | null): Promise<Record<string, number>> {
  const hs = await measuredLoop(ctx, procs, 'tlshs', handshakeArgs(ctx, host, port), 'seq');
  const { bytes } = ctx.opts;
  const route = { host, port, tls: { servername: BULK_SNI, ca: ctx.pki.ca, cert: null, key: null }, connect: null };
  const pushArgs = ['--route', JSON.stringify(route), '--bytes', String(bytes), '--dir', 'up'];
  const bulk = await measured(procs, () => runClient<PushResult>(ctx, 'push', pushArgs, bulkTimeoutMs(bytes)));
  const routed = procs.length > 0;
  return {
    hs_p50: hs.result.p50,
    hs_p99: hs.result.p99,
    ratio_p50: direct === null ? 1 : hs.result.p50 / direct.p50,
    ratio_p99: direct === null ? 1 : hs.result.p99 / direct.p99,
    cpu_us: routed ? cpuUsPer(hs.cpuTotalS, hs.result) : Number.NaN,
    hs_rate: hs.result.rate,
    bulk_cpu: routed ? bulk.cpuTotalS / (bytes / 1e9) : Number.NaN,
    bulk_mbps: bulk.result.mbps,
    rss_mb: routed ? bulk.rssTotalKb / 1024 : Number.NaN,
  };
}

function handshakeArgs(ctx: BenchContext, host: string, port: number): string[] {
  return ['--host', host, '--port', String(port), '--ca', ctx.pki.ca, '--names', SNI_NAMES.join(','), '--cn', SERVER_CN];
}

function sniSubjects(ctx: BenchContext, routes: readonly SniRoute[], directPort: number): SubjectSpec[] {
  const round: DirectRound = { p50: Number.NaN, p99: Number.NaN };
  const running = (host: string, port: number, s: Started, isDirect: boolean): Running => ({
    procs: s.procs,
    stop: s.stop,
    warm: () => warmUp(ctx, 'tlshs', handshakeArgs(ctx, host, port)),
    measure: async () => {
      const values = await measureSni(ctx, host, port, s.procs, isDirect ? null : round);
      if (isDirect) {
        round.p50 = values.hs_p50 ?? Number.NaN;
        round.p99 = values.hs_p99 ?? Number.NaN;
      }
      return values;
    },
  });
  const router = (name: string, start: () => Promise<Listening>): SubjectSpec => ({
    name,
    tsproxy: false,
    group: 'sni',
    start: async () => {
      const s = await start();
      return running('127.0.0.1', s.port, s, false);
    },
  });
  const specs: SubjectSpec[] = [
    {
      name: 'direct',
      tsproxy: false,
      group: 'direct',
      start: () => Promise.resolve(running('127.0.0.1', directPort, { procs: [], stop: () => Promise.resolve() }, true)),
    },
    {
      name: 'tsproxy',
      tsproxy: true,
      group: 'sni',
      start: async () => {
        const s = await startTsproxySni(ctx, routes);
        return running(s.entry.host, s.entry.port, s, false);
      },
    },
    router('haproxy', () => startHaproxySni(ctx, routes)),
    router('nginx', () => startNginxSni(ctx, routes)),
  ];
  if (ctx.opts.nodeBaseline) specs.push(router('node-min', () => startNodeSni(ctx, routes)));
  return specs;
}

export async function runSni(ctx: BenchContext): Promise<ScenarioResult> {
  const sink = await startSink(ctx, 2);
  const [portA, portB] = sink.tls as [number, number];
  const routes: SniRoute[] = [
    { names: ['a.test', 'c.test'], port: portA },
    { names: ['b.test', 'd.test'], port: portB },
  ];
  try {
    const subjects = await roundRobin(ctx, sniSubjects(ctx, routes, portA), { scenario: 'sni', metrics: METRICS, fresh: false });
    return {
      id: 'sni',
      title: '4. SNI routing (layer 4, TLS passes through)',
      params: { n: ctx.opts.n, bytes: ctx.opts.bytes, runs: ctx.opts.runs },
      metrics: METRICS,
      subjects,
      notes: [
        'handshake = tls.connect() until secureConnect, full TLS 1.3 handshake, chain and CN checked, SNI rotating a..d.test',
        'vs direct = this p50 (p99) / the direct p50 (p99) of the same round (direct runs first in each round)',
        'bulk = one TLS upload with SNI b.test through the router; router CPU per GB (10^9 bytes)',
      ],
    };
  } finally {
    await sink.stop();
  }
}
