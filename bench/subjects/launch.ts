/** Start a peer process and wait until it accepts on its ports; stop it again if it never does. */
import type { BenchContext } from '../context.js';
import { waitForPort, type Proc, type SpawnOptions } from '../procs.js';

export async function launchListening(
  ctx: BenchContext,
  name: string,
  bin: string,
  args: readonly string[],
  ports: readonly number[],
  timeoutMs: number,
  opts: SpawnOptions = {},
): Promise<Proc> {
  const p = ctx.reg.spawn(name, bin, args, opts);
  try {
    for (const port of ports) await waitForPort('127.0.0.1', port, timeoutMs, p);
  } catch (err) {
    await ctx.reg.stop(p);
    throw err;
  }
  return p;
}
