/**
 * Scenario 5, memory per idle tunnel: a freshly started proxy, --tunnels tunnels opened --conc at
 * a time (each proven with a 1-byte echo), held; KB per tunnel = (VmRSS with the tunnels open,
 * SETTLE_MS after the last one - VmRSS fresh) / tunnels. Plain: tsproxy CONNECT vs HAProxy (raw
 * TCP forward) and squid; bridged (both processes summed): tsproxy ingress + peer vs stunnel pair.
 */
import { join } from 'node:path';
import { startNodeBridge, startNodeConnect } from '../baseline/launch.js';
import type { Route } from '../clients/wire.js';
import type { BenchContext } from '../context.js';
import { rssNowKb } from '../measure.js';
import { metric, type ScenarioResult } from '../results.js';
import { BRIDGE_SERVICE_HOST } from '../subjects/ats.js';
import { startHaproxyTcp } from '../subjects/haproxy.js';
import { startSquid } from '../subjects/squid.js';
import { startStunnelPair } from '../subjects/stunnel.js';
import { startTsproxyBridge, startTsproxyConnect } from '../subjects/tsproxy.js';
import type { ProxyProc, Started } from '../subjects/types.js';
import { roundRobin, type Running, type SubjectSpec } from './round-robin.js';
import { startSink, type SinkPorts } from './sink.js';

const SETTLE_MS = 2000;
const AFTER_CLOSE_MS = 1000;
const RSS_POLL_MS = 250;
/** The client closes its tunnels by itself after this long, whatever happens to the harness. */
const HOLD_MAX_SECS = 180;
const OPEN_TIMEOUT_MS = 120_000;
const CLOSE_TIMEOUT_MS = 30_000;
const MAX_FAIL_SHARE = 0.01;

const METRICS = [
  metric('kb_per_tunnel', 'KB/idle tunnel', 'KB', 1, 'lower', true),
  metric('fresh_mb', 'RSS fresh', 'MB', 1, 'lower'),
  metric('with_mb', 'RSS with tunnels', 'MB', 1, 'lower'),
  metric('after_mb', 'RSS after close', 'MB', 1, 'lower'),
  metric('open_secs', 'open time', 's', 2, 'lower'),
];

interface IdleReady {
  readonly ready: number;
  readonly failed: number;
  readonly firstError: string | null;
  readonly openSecs: number;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]).finally(() => clearTimeout(timer));
}

/** VmRSS once it stops moving after start-up: two readings RSS_POLL_MS apart within 0.5%, or at most 5 s. */
async function settledRssKb(procs: readonly ProxyProc[]): Promise<number> {
  const deadline = Date.now() + 5000;
  let prev = rssNowKb(procs);
  for (;;) {
    await pause(RSS_POLL_MS);
    const cur = rssNowKb(procs);
    if (Math.abs(cur - prev) <= prev * 0.005 || Date.now() > deadline) return cur;
    prev = cur;
  }
}

async function holdIdle(ctx: BenchContext, route: Route, procs: readonly ProxyProc[]): Promise<Record<string, number>> {
  const n = ctx.opts.tunnels;
  const freshKb = await settledRssKb(procs);
  const args = ['--route', JSON.stringify(route), '--n', String(n), '--conc', String(ctx.opts.conc), '--hold', String(HOLD_MAX_SECS)];
  const p = ctx.reg.spawn('client-idle', process.execPath, [join(ctx.clientsDir, 'idle.js'), ...args], { stdin: true });
  try {
    const r = await p.firstLine(
      (line, stream) => (stream === 'stdout' && line.includes('"ready"') ? (JSON.parse(line) as IdleReady) : null),
      OPEN_TIMEOUT_MS,
    );
    if (r.failed > n * MAX_FAIL_SHARE) throw new Error(`${r.failed} of ${n} tunnels failed; first: ${r.firstError ?? '?'}`);
    await pause(SETTLE_MS);
    const withKb = rssNowKb(procs);
    p.child.stdin?.write('close\n');
    await within(p.exited, CLOSE_TIMEOUT_MS);
    await pause(AFTER_CLOSE_MS);
    const afterKb = rssNowKb(procs);
    return {
      kb_per_tunnel: (withKb - freshKb) / r.ready,
      fresh_mb: freshKb / 1024,
      with_mb: withKb / 1024,
      after_mb: afterKb / 1024,
      open_secs: r.openSecs,
    };
  } finally {
    await ctx.reg.stop(p);
  }
}

function idleSpec(ctx: BenchContext, name: string, group: string, start: () => Promise<Started & { route: Route }>): SubjectSpec {
  return {
    name,
    tsproxy: name.startsWith('tsproxy'),
    group,
    start: async (): Promise<Running> => {
      const s = await start();
      return { procs: s.procs, stop: s.stop, warm: () => Promise.resolve(null), measure: () => holdIdle(ctx, s.route, s.procs) };
    },
  };
}

function idleSubjects(ctx: BenchContext, sink: SinkPorts): SubjectSpec[] {
  const viaIp = `127.0.0.1:${sink.echo}`;
  const viaName = `${BRIDGE_SERVICE_HOST}:${sink.echo}`;
  const connectTo = (host: string, port: number, target: string): Route => ({ host, port, tls: null, connect: target });
  const raw = (port: number): Route => ({ host: '127.0.0.1', port, tls: null, connect: null });
  const specs = [
    idleSpec(ctx, 'tsproxy', 'plain', async () => {
      const s = await startTsproxyConnect(ctx);
      return { ...s, route: connectTo(s.entry.host, s.entry.port, viaIp) };
    }),
    idleSpec(ctx, 'haproxy', 'plain', async () => {
      const s = await startHaproxyTcp(ctx, sink.echo, ctx.opts.tunnels);
      return { ...s, route: raw(s.port) };
    }),
    idleSpec(ctx, 'squid', 'plain', async () => {
      const s = await startSquid(ctx);
      return { ...s, route: connectTo('127.0.0.1', s.port, viaIp) };
    }),
    idleSpec(ctx, 'tsproxy-bridge', 'bridged', async () => {
      const s = await startTsproxyBridge(ctx);
      return { ...s, route: connectTo(s.entry.host, s.entry.port, viaName) };
    }),
    idleSpec(ctx, 'stunnel', 'bridged', async () => {
      const s = await startStunnelPair(ctx, [sink.echo]);
      return { ...s, route: raw(s.entry.get(sink.echo) ?? 0) };
    }),
  ];
  if (ctx.opts.nodeBaseline) {
    specs.push(
      idleSpec(ctx, 'node-min', 'plain', async () => {
        const s = await startNodeConnect(ctx);
        return { ...s, route: connectTo('127.0.0.1', s.port, viaIp) };
      }),
      idleSpec(ctx, 'node-min-bridge', 'bridged', async () => {
        const s = await startNodeBridge(ctx);
        return { ...s, route: connectTo('127.0.0.1', s.port, viaName) };
      }),
    );
  }
  return specs;
}

export async function runIdle(ctx: BenchContext): Promise<ScenarioResult> {
  const sink = await startSink(ctx, 0);
  try {
    const subjects = await roundRobin(ctx, idleSubjects(ctx, sink), { scenario: 'idle', metrics: METRICS, fresh: true });
    return {
      id: 'idle',
      title: '5. Memory per idle tunnel',
      params: { tunnels: ctx.opts.tunnels, conc: ctx.opts.conc, runs: ctx.opts.runs },
      metrics: METRICS,
      subjects,
      notes: [
        `KB/idle tunnel = (VmRSS with the tunnels open, ${SETTLE_MS / 1000} s after the last - VmRSS fresh) / tunnels; proxy restarted for every run`,
        'bridged subjects sum both processes; HAProxy forwards raw TCP (no CONNECT)',
      ],
    };
  } finally {
    await sink.stop();
  }
}
