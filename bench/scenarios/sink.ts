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
  const args = [join(ctx.clientsDir, 'sink.js')];
  if (tlsListeners > 0) {
    args.push('--tls-ports', Array.from({ length: tlsListeners }, () => '0').join(','));
    args.push('--cert', ctx.pki.server.cert, '--key', ctx.pki.server.key);
  }
  const p = ctx.reg.spawn('sink', process.execPath, args);
  try {
    const ports = await p.firstLine(
      (line, stream) => (stream === 'stdout' && line.startsWith('{') ? (JSON.parse(line) as { data: number; echo: number; tls: number[] }) : null),
      START_TIMEOUT_MS,
    );
    return { ...ports, stop: () => ctx.reg.stop(p) };
  } catch (err) {
    await ctx.reg.stop(p);
    throw new Error(`the sink did not start: ${err instanceof Error ? err.message : String(err)}`);
  }
}
