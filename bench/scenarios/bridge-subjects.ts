/**
 * The subjects of the two bridge scenarios: tsproxy (tls_bridge ingress + peer), two ATS with
 * tls_bridge.so (when a built plugin is given), the stunnel pair, and optionally the minimal Node
 * relays. CONNECT-speaking bridges get `CONNECT sink.service.test:PORT` (the plugin's regex
 * matches it; the peer resolves it through its hosts file); stunnel is a fixed path per port.
 */
import { startNodeBridge } from '../baseline/launch.js';
import type { BenchContext } from '../context.js';
import type { Route } from '../clients/wire.js';
import { BRIDGE_SERVICE_HOST, findTlsBridge, startAtsBridge } from '../subjects/ats.js';
import { startStunnelPair } from '../subjects/stunnel.js';
import { startTsproxyBridge } from '../subjects/tsproxy.js';
import type { ProxyProc, Started } from '../subjects/types.js';
import { warmEcho } from './loops.js';
import type { Running, SubjectSpec } from './round-robin.js';
import type { SinkPorts } from './sink.js';

export interface BridgeRoutes {
  /** To the sink's data listener, and to its echo listener. */
  readonly data: Route;
  readonly echo: Route;
}

/** Given a started bridge's routes and processes, the function that measures one run. */
export type BridgeMeasure = (routes: BridgeRoutes, procs: readonly ProxyProc[]) => Running['measure'];

export function bridgeSubjects(ctx: BenchContext, sink: SinkPorts, measure: BridgeMeasure): SubjectSpec[] {
  const viaConnect = (host: string, port: number): BridgeRoutes => ({
    data: { host, port, tls: null, connect: `${BRIDGE_SERVICE_HOST}:${sink.data}` },
    echo: { host, port, tls: null, connect: `${BRIDGE_SERVICE_HOST}:${sink.echo}` },
  });
  const running = (s: Started, routes: BridgeRoutes): Running => ({
    procs: s.procs,
    stop: s.stop,
    warm: () => warmEcho(ctx, routes.echo),
    measure: measure(routes, s.procs),
  });
  const specs: SubjectSpec[] = [
    {
      name: 'tsproxy',
      tsproxy: true,
      group: 'bridge',
      start: async () => {
        const s = await startTsproxyBridge(ctx);
        return running(s, viaConnect(s.entry.host, s.entry.port));
      },
    },
    {
      name: 'ats-tls-bridge',
      tsproxy: false,
      group: 'bridge',
      start: async () => {
        const s = await startAtsBridge(ctx, findTlsBridge(ctx.opts.atsTlsBridge));
        return running(s, viaConnect('127.0.0.1', s.port));
      },
    },
    {
      name: 'stunnel',
      tsproxy: false,
      group: 'bridge',
      start: async () => {
        const s = await startStunnelPair(ctx, [sink.data, sink.echo]);
        const raw = (target: number): Route => ({ host: '127.0.0.1', port: s.entry.get(target) ?? 0, tls: null, connect: null });
        return running(s, { data: raw(sink.data), echo: raw(sink.echo) });
      },
    },
  ];
  if (ctx.opts.nodeBaseline) {
    specs.push({
      name: 'node-min',
      tsproxy: false,
      group: 'bridge',
      start: async () => {
        const s = await startNodeBridge(ctx);
        return running(s, viaConnect('127.0.0.1', s.port));
      },
    });
  }
  return specs;
}
