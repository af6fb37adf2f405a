/** Start the minimal Node relays (relay.js) as a reference peer (--node-baseline). */
import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { BRIDGE_SERVICE_HOST } from '../subjects/ats.js';
import { orSkip, type Listening, type SniRoute } from '../subjects/types.js';

const START_TIMEOUT_MS = 10_000;

async function relay(ctx: BenchContext, name: string, args: readonly string[]): Promise<Listening> {
  const p = ctx.reg.spawn(name, process.execPath, [join(ctx.baselineDir, 'relay.js'), ...args]);
  try {
    const port = await p.firstLine(
      (line, stream) => (stream === 'stdout' && line.startsWith('{') ? (JSON.parse(line) as { port: number }).port : null),
      START_TIMEOUT_MS,
    );
    return { procs: [{ role: name, pid: p.pid }], port, stop: () => ctx.reg.stop(p) };
  } catch (err) {
    await ctx.reg.stop(p);
    throw err;
  }
}

/** Minimal CONNECT proxy. */
export function startNodeConnect(ctx: BenchContext): Promise<Listening> {
  return orSkip('node-min', () => relay(ctx, 'node-connect', ['--mode', 'connect']));
}

/** Minimal SNI router. */
export function startNodeSni(ctx: BenchContext, routes: readonly SniRoute[]): Promise<Listening> {
  const list = routes.flatMap((r) => r.names.map((n) => `${n}=${r.port}`)).join(',');
  return orSkip('node-min', () => relay(ctx, 'node-sni', ['--mode', 'sni', '--routes', list]));
}

/** Minimal bridge: bridge-out (mutual TLS in, CONNECT out) then bridge-in pointing at it. */
export function startNodeBridge(ctx: BenchContext): Promise<Listening> {
  const { pki } = ctx;
  return orSkip('node-min', async () => {
    const out = await relay(ctx, 'node-bridge-out', [
      '--mode', 'bridge-out', '--ca', pki.ca, '--cert', pki.peer.cert, '--key', pki.peer.key,
      '--hosts', `${BRIDGE_SERVICE_HOST}=127.0.0.1`,
    ]);
    try {
      const inn = await relay(ctx, 'node-bridge-in', [
        '--mode', 'bridge-in', '--peer-port', String(out.port), '--ca', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key,
      ]);
      return {
        procs: [
          { role: 'in', pid: inn.procs[0]?.pid ?? 0 },
          { role: 'out', pid: out.procs[0]?.pid ?? 0 },
        ],
        port: inn.port,
        stop: async () => {
          await Promise.all([inn.stop(), out.stop()]);
        },
      };
    } catch (err) {
      await out.stop();
      throw err;
    }
  });
}
