/**
 * Worker processes (ATS's exec threads): with more than one worker, the first process is the
 * primary. It forks the workers with node:cluster, and each worker is a whole host: its own
 * config generation, plugins, pools and counters. The listening sockets are shared and the kernel
 * spreads the accepted connections over the workers (SCHED_NONE: no hand-off through the primary,
 * which would cost it CPU on every connection).
 *
 * - proxy.config.exec_thread.autoconfig.enabled 1: one worker per CPU the process may use;
 *   0: proxy.config.exec_thread.limit workers. One worker means no primary at all.
 * - The primary prints the one `NOTE: listening on ...` line once every worker listens, and gives
 *   every worker that asks the same TLS session-ticket keys (over IPC, never the environment), so
 *   a client resumes whichever worker it reaches.
 * - A worker that dies before it listens stops the start (exit 1). One that dies later is replaced,
 *   after a pause that doubles while workers keep dying young (up to 10 s).
 * - SIGTERM / SIGINT to the primary stop every worker (each drains), then the primary exits 0.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { RecordsConfig } from './config/types.js';
import { diags } from './diags.js';

/** TLS session-ticket keys: 16 bytes name, 16 HMAC, 16 AES (tls.Server `ticketKeys`). */
const TICKET_KEY_BYTES = 48;
/** A worker that lived at least this long was not dying young. */
const STEADY_MS = 30_000;
const MAX_RESTART_DELAY_MS = 10_000;

type FromWorker = { readonly kind: 'ticket-keys?' } | { readonly kind: 'listening'; readonly list: string };
type ToWorker = { readonly kind: 'ticket-keys'; readonly keys: string };

export function workerCount(rec: RecordsConfig): number {
  return rec.execThread.autoconfig ? availableParallelism() : rec.execThread.limit;
}

export function isWorker(): boolean {
  return cluster.isWorker;
}

/**
 * In a worker: ask the primary for the ticket keys and wait for them (null in a single process).
 * The worker asks, rather than the primary sending at fork time, because a message that arrives
 * while the worker is still loading its modules finds no listener and is lost.
 */
export function ticketKeysFromPrimary(): Promise<Buffer> | null {
  if (!cluster.isWorker) return null;
  return new Promise((resolve) => {
    process.once('message', (m: ToWorker) => resolve(Buffer.from(m.keys, 'hex')));
    const ask: FromWorker = { kind: 'ticket-keys?' };
    process.send?.(ask);
  });
}

/** In a worker: tell the primary this worker listens (`list` as the NOTE line prints it). */
export function reportListening(list: string): void {
  const m: FromWorker = { kind: 'listening', list };
  process.send?.(m);
}

/** The primary: fork `count` workers running this same command; resolves with the exit code. */
export function runPrimary(count: number): Promise<number> {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const keys = randomBytes(TICKET_KEY_BYTES).toString('hex');
  const live = new Map<Worker, { started: number; listening: boolean }>();
  let stopping = false;
  let started = false;
  let restartDelay = 100;

  return new Promise<number>((done) => {
    let exitCode = 0;
    /** Stop every worker; the primary exits with `code` once the last one is gone. */
    const finish = (code: number): void => {
      stopping = true;
      exitCode = code;
      if (live.size === 0) return done(code);
      for (const w of live.keys()) w.process.kill('SIGTERM');
    };
    const fork = (): void => {
      const w = cluster.fork();
      live.set(w, { started: Date.now(), listening: false });
      w.on('message', (msg: FromWorker) => {
        if (msg.kind === 'ticket-keys?') {
          const m: ToWorker = { kind: 'ticket-keys', keys };
          w.send(m);
          return;
        }
        const state = live.get(w);
        if (state === undefined || state.listening) return;
        state.listening = true;
        if (!started && [...live.values()].every((s) => s.listening)) {
          started = true;
          diags.note('listening on %s', msg.list);
        }
      });
    };
    cluster.on('exit', (w, code, signal) => {
      const state = live.get(w);
      live.delete(w);
      if (stopping) {
        if (live.size === 0) done(exitCode);
        return;
      }
      if (state === undefined) return;
      const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
      if (!started) {
        diags.error('worker (pid %d) failed before it listened (%s): stopping', w.process.pid ?? 0, how);
        finish(1);
        return;
      }
      restartDelay = Date.now() - state.started >= STEADY_MS ? 100 : Math.min(MAX_RESTART_DELAY_MS, restartDelay * 2);
      diags.error('worker (pid %d) died (%s): starting another in %d ms', w.process.pid ?? 0, how, restartDelay);
      setTimeout(() => {
        if (!stopping) fork();
      }, restartDelay);
    });
    const stop = (sig: string): void => {
      if (stopping) return;
      diags.note('%s: stopping %d workers', sig, live.size);
      finish(0);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    for (let i = 0; i < count; i++) fork();
  });
}
