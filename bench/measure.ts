/**
 * Measuring around a client run: the proxy processes' CPU (utime+stime) and memory before and
 * after, and running the client scripts as separate processes (their CPU is not the proxy's).
 */
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { treeCpuSeconds, treeHwmKb, treeRssKb } from './procfs.js';
import type { ProxyProc } from './subjects/types.js';

export interface ProcDelta {
  /** CPU seconds used during the measured span, per role. */
  readonly cpuS: Readonly<Record<string, number>>;
  readonly cpuTotalS: number;
  /** VmRSS at the end, per role, and summed. */
  readonly rssKb: Readonly<Record<string, number>>;
  readonly rssTotalKb: number;
  /** Peak RSS (VmHWM) summed over the processes. */
  readonly hwmTotalKb: number;
}

/** CPU seconds per role right now. */
function cpuNow(procs: readonly ProxyProc[]): Map<string, number> {
  return new Map(procs.map((p) => [p.role, treeCpuSeconds(p.pid)]));
}

/** Summed VmRSS (KB) of the processes right now. */
export function rssNowKb(procs: readonly ProxyProc[]): number {
  return procs.reduce((sum, p) => sum + treeRssKb(p.pid), 0);
}

/** Run `fn` and report the proxies' CPU spent meanwhile and their memory after. */
export async function measured<T>(procs: readonly ProxyProc[], fn: () => Promise<T>): Promise<{ result: T } & ProcDelta> {
  const before = cpuNow(procs);
  const result = await fn();
  const after = cpuNow(procs);
  const cpuS: Record<string, number> = {};
  const rssKb: Record<string, number> = {};
  let cpuTotalS = 0;
  let rssTotalKb = 0;
  let hwmTotalKb = 0;
  for (const p of procs) {
    const used = (after.get(p.role) ?? 0) - (before.get(p.role) ?? 0);
    cpuS[p.role] = used;
    cpuTotalS += used;
    rssKb[p.role] = treeRssKb(p.pid);
    rssTotalKb += rssKb[p.role] ?? 0;
    hwmTotalKb += treeHwmKb(p.pid);
  }
  return { result, cpuS, cpuTotalS, rssKb, rssTotalKb, hwmTotalKb };
}

/** Run a client script (dist/bench/clients/<script>.js) to completion; return its last JSON line. */
export async function runClient<T>(ctx: BenchContext, script: string, args: readonly string[], timeoutMs: number): Promise<T> {
  const out: string[] = [];
  const p = ctx.reg.spawn(`client-${script}`, process.execPath, [join(ctx.clientsDir, `${script}.js`), ...args], {
    onLine: (line, stream) => {
      if (stream === 'stdout') out.push(line);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([p.exited, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    await ctx.reg.stop(p);
    throw new Error(`${script} did not finish within ${Math.round(timeoutMs / 1000)} s`);
  }
  if (outcome !== 0) throw new Error(p.describeExit());
  const last = out[out.length - 1];
  if (last === undefined) throw new Error(`${script} printed no result`);
  return JSON.parse(last) as T;
}
