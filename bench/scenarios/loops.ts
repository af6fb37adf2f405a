/** Running connbench/tlshs loops from a scenario: argument lists, time limits, failure checks. */
import type { LoopResult } from '../clients/loop.js';
import type { Route } from '../clients/wire.js';
import type { BenchContext } from '../context.js';
import { measured, runClient, type ProcDelta } from '../measure.js';
import type { ProxyProc } from '../subjects/types.js';

/** Upper bound on a sequential loop's duration (each attempt is also limited to 5 s). */
const SEQ_SECS_LIMIT = 120;
/** Unmeasured attempts right after a subject starts. */
const WARM_N = 20;
/** More than this share of failed attempts fails the run. */
const MAX_FAIL_SHARE = 0.01;

/** Sequential (--n attempts, one at a time) or concurrent (--conc loops for --secs). */
export type LoopMode = 'seq' | 'conc';

/** `--n/--conc/--secs` for a sequential run of ctx.opts.n or a concurrent run of ctx.opts.secs. */
function loopArgs(ctx: BenchContext, mode: LoopMode): string[] {
  const { n, conc, secs } = ctx.opts;
  return mode === 'seq'
    ? ['--n', String(n), '--conc', '1', '--secs', String(SEQ_SECS_LIMIT)]
    : ['--n', String(Math.ceil(conc * secs * 5000)), '--conc', String(conc), '--secs', String(secs)];
}

function check(r: LoopResult, script: string): LoopResult {
  if (r.ok === 0 || r.failed > (r.ok + r.failed) * MAX_FAIL_SHARE) {
    throw new Error(`${script}: ${r.failed} of ${r.ok + r.failed} attempts failed; first: ${r.firstError ?? '?'}`);
  }
  return r;
}

/** Run a loop client around the proxies' CPU measurement; fail on too many failed attempts. */
export async function measuredLoop(
  ctx: BenchContext,
  procs: readonly ProxyProc[],
  script: 'connbench' | 'tlshs',
  args: readonly string[],
  mode: LoopMode,
): Promise<{ result: LoopResult } & ProcDelta> {
  const all = [...args, ...loopArgs(ctx, mode)];
  const limit = (mode === 'seq' ? SEQ_SECS_LIMIT : ctx.opts.secs) * 1000 + 30_000;
  const m = await measured(procs, () => runClient<LoopResult>(ctx, script, all, limit));
  check(m.result, script);
  return m;
}

/** Proxy CPU microseconds per successful attempt. */
export function cpuUsPer(cpuS: number | undefined, r: LoopResult): number {
  return cpuS === undefined ? Number.NaN : (cpuS * 1e6) / r.ok;
}

/**
 * WARM_N unmeasured attempts (connbench to the echo route, or tlshs handshakes) so that JIT
 * compilation and lazy initialisation (e.g. ATS's first host-file lookup) stay out of run 1.
 * Failures are only reported (the returned text): the measured runs judge the subject.
 */
export async function warmUp(ctx: BenchContext, script: 'connbench' | 'tlshs', args: readonly string[]): Promise<string | null> {
  const all = [...args, '--n', String(WARM_N), '--conc', '1', '--secs', '30'];
  try {
    const r = await runClient<LoopResult>(ctx, script, all, 60_000);
    return r.failed > 0 ? `${r.failed} of ${WARM_N} failed (${r.firstError ?? '?'})` : null;
  } catch (err) {
    return `failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Warm-up through a route to the sink's echo listener. */
export function warmEcho(ctx: BenchContext, route: Route): Promise<string | null> {
  return warmUp(ctx, 'connbench', ['--route', JSON.stringify(route), '--until', 'echo']);
}
