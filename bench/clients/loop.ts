/**
 * The attempt loop shared by connbench and tlshs: `conc` async loops run attempts until `n`
 * attempts have started or `secs` have passed (both limits always apply). One attempt that
 * takes longer than ATTEMPT_TIMEOUT_MS counts as failed.
 */
import { performance } from 'node:perf_hooks';
import { percentile } from '../stats.js';
import { withTimeout } from './dial.js';

export const ATTEMPT_TIMEOUT_MS = 5000;

/** What one attempt measured, in ms: the headline latency and optionally the CONNECT reply time. */
export interface Attempt {
  readonly ms: number;
  readonly replyMs: number | null;
}

export interface LoopLimits {
  readonly n: number;
  readonly conc: number;
  readonly secs: number;
}

export interface LoopResult {
  readonly ok: number;
  readonly failed: number;
  readonly firstError: string | null;
  readonly secs: number;
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  readonly replyP50: number | null;
  readonly replyP99: number | null;
}

/** Run attempts (each gets its sequence number) within the limits and summarise their latencies. */
export async function runAttempts(attempt: (i: number) => Promise<Attempt>, limits: LoopLimits): Promise<LoopResult> {
  const lat: number[] = [];
  const reply: number[] = [];
  let failed = 0;
  let firstError: string | null = null;
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + limits.secs * 1000;
  const loop = async (): Promise<void> => {
    while (started < limits.n && performance.now() < deadline) {
      const i = started++;
      try {
        const a = await withTimeout(attempt(i), ATTEMPT_TIMEOUT_MS, `attempt ${i}`);
        lat.push(a.ms);
        if (a.replyMs !== null) reply.push(a.replyMs);
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: limits.conc }, loop));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  reply.sort((a, b) => a - b);
  return {
    ok: lat.length,
    failed,
    firstError,
    secs,
    rate: lat.length / secs,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    mean: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
    replyP50: reply.length > 0 ? percentile(reply, 50) : null,
    replyP99: reply.length > 0 ? percentile(reply, 99) : null,
  };
}
