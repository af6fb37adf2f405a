/** Start the sink process (clients/sink.js) and read the ports it listens on. */
import { join } from 'node:path';
import type { BenchContext } from '../context.js';

const START_TIMEOUT_MS = 10_000;

export interface SinkPorts {
  readonly data: number;
  readonly echo: number;
  /** TLS data listeners (SNI backends). */
  readonly tls: readonly number[];
  stop(): Promise<void>;
}

export async function startSink(ctx: BenchContext, tlsListeners: number): Promise<SinkPorts> {
  let resolvePorts: (p: { data: number; echo: number; tls: number[] }) => void = () => undefined;
  const ports = new Promise<{ data: number; echo: number; tls: number[] }>((r) => {
    resolvePorts = r;
  });
  const args = [join(ctx.clientsDir, 'sink.js')];
  if (tlsListeners > 0) {
    args.push('--tls-ports', Array.from({ length: tlsListeners }, () => '0').join(','));
    args.push('--cert', ctx.pki.server.cert, '--key', ctx.pki.server.key);
  }
  const p = ctx.reg.spawn('sink', process.execPath, args, {
    onLine: (line, stream) => {
      if (stream === 'stdout' && line.startsWith('{')) resolvePorts(JSON.parse(line) as { data: number; echo: number; tls: number[] });
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ports,
    p.exited.then(() => null),
    new Promise<null>((r) => {
      timer = setTimeout(() => r(null), START_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === null) {
    await ctx.reg.stop(p);
    throw new Error(`the sink did not start: ${p.describeExit()}`);
  }
  return { ...outcome, stop: () => ctx.reg.stop(p) };
}
