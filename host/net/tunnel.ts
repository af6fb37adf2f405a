/**
 * The one tunnel primitive: relays a ⇄ b for CONNECT, intercepted CONNECT, VConn tunnels and the
 * SNI router. Nothing else in the host copies bytes both ways.
 *
 * - Back-pressure: a reader is paused while its writer's `write()` returns false and resumed on
 *   'drain', so at most about one high-water mark per side is buffered whatever the peers do.
 * - Half-close: 'end' on one side ends the other side's writable and the reverse direction keeps
 *   flowing; the tunnel closes when both directions have ended and flushed.
 * - Inactivity: one timer per tunnel ticks every idleTimeoutMs/4 and compares the byte counters;
 *   four quiet ticks in a row destroy both sides (reason 'timeout'). Nothing is allocated per chunk.
 * - An error or close on one side destroys the other at once. Unless both directions finished,
 *   both sides are reset (RST), so a peer never mistakes a failed tunnel for a finished one.
 *   Cleanup and `onClose` run once.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Tunnel, TunnelOptions, TunnelStats } from '../api/types.js';
import { diags } from '../diags.js';

const dbg = diags.dbgCtl('http_tunnel');

/** Quiet ticks that make an idle timeout; the timeout fires within idleTimeoutMs·(1 + 1/TICKS). */
const TICKS = 4;

/**
 * Close abnormally: a TCP socket (or a virtual connection) is reset so the peer sees an error,
 * not a clean EOF it could take for the end of the data. TLS sockets are destroyed.
 */
function reset(s: Duplex): void {
  const r = (s as Duplex & { resetAndDestroy?: () => unknown }).resetAndDestroy;
  // Node cannot reset a socket whose write side already ended (EINVAL, and the handle stays open).
  if (s.destroyed || s.writableEnded || s instanceof tls.TLSSocket || typeof r !== 'function') {
    s.destroy();
    return;
  }
  try {
    r.call(s);
  } catch {
    s.destroy(); // not a TCP handle (e.g. a pipe)
  }
}

/**
 * Relay bytes between `a` and `b` until both directions end, one side fails, the tunnel is idle
 * for `opts.idleTimeoutMs`, or `destroy()` is called. `headToB` / `headToA` are written first and
 * count in `aToB` / `bToA`. Both sides are switched to `allowHalfOpen` and, for sockets, no Nagle.
 */
export function createTunnel(a: Duplex, b: Duplex, opts: TunnelOptions = {}): Tunnel {
  let aToB = 0;
  let bToA = 0;
  let aEnded = false;
  let bEnded = false;
  let aFinished = false;
  let bFinished = false;
  let done = false;
  let timer: NodeJS.Timeout | null = null;
  let resolveClosed: (s: TunnelStats) => void = () => {};
  const closed = new Promise<TunnelStats>((resolve) => {
    resolveClosed = resolve;
  });

  const finish = (reason: TunnelStats['reason'], error?: Error): void => {
    if (done) return;
    done = true;
    if (timer !== null) clearTimeout(timer);
    const close = reason === 'done' ? (s: Duplex) => s.destroy() : reset;
    close(a);
    close(b);
    const stats: TunnelStats = error === undefined ? { aToB, bToA, reason } : { aToB, bToA, reason, error };
    if (dbg.on) dbg('tunnel closed: %s, %d bytes a→b, %d bytes b→a%s', reason, aToB, bToA, error ? `: ${error.message}` : '');
    if (opts.onClose !== undefined) {
      try {
        opts.onClose(stats);
      } catch (e) {
        diags.error('tunnel onClose threw: %s', e instanceof Error ? e.message : String(e));
      }
    }
    resolveClosed(stats);
  };
  const maybeDone = (): void => {
    if (aEnded && bEnded && aFinished && bFinished) finish('done');
  };

  // A side that ended and finished by itself may close before the other side has flushed.
  const onClose = (selfDone: () => boolean) => () => {
    if (!selfDone()) finish('destroyed');
  };
  for (const s of [a, b]) {
    s.allowHalfOpen = true;
    if (s instanceof net.Socket) s.setNoDelay(true);
    s.on('error', (err: Error) => finish('error', err));
  }
  a.on('close', onClose(() => aEnded && aFinished));
  b.on('close', onClose(() => bEnded && bFinished));
  const onAEnd = (): void => {
    aEnded = true;
    if (!done) b.end();
    maybeDone();
  };
  const onBEnd = (): void => {
    bEnded = true;
    if (!done) a.end();
    maybeDone();
  };
  const onAFinish = (): void => {
    aFinished = true;
    maybeDone();
  };
  const onBFinish = (): void => {
    bFinished = true;
    maybeDone();
  };
  a.on('end', onAEnd);
  b.on('end', onBEnd);
  a.on('finish', onAFinish);
  b.on('finish', onBFinish);

  if (opts.headToB !== undefined && opts.headToB.length > 0) {
    aToB += opts.headToB.length;
    if (!b.write(opts.headToB)) a.pause();
  }
  if (opts.headToA !== undefined && opts.headToA.length > 0) {
    bToA += opts.headToA.length;
    if (!a.write(opts.headToA)) b.pause();
  }
  a.on('data', (chunk: Buffer) => {
    aToB += chunk.length;
    if (!b.write(chunk)) a.pause();
  });
  b.on('data', (chunk: Buffer) => {
    bToA += chunk.length;
    if (!a.write(chunk)) b.pause();
  });
  b.on('drain', () => a.resume());
  a.on('drain', () => b.resume());
  if (!b.writableNeedDrain) a.resume();
  if (!a.writableNeedDrain) b.resume();

  const idle = opts.idleTimeoutMs ?? 0;
  if (idle > 0) {
    let seen = aToB + bToA;
    let quiet = 0;
    timer = setTimeout(function tick() {
      const total = aToB + bToA;
      if (total !== seen) {
        seen = total;
        quiet = 0;
      } else if (++quiet >= TICKS) {
        finish('timeout');
        return;
      }
      timer?.refresh();
    }, Math.max(1, Math.ceil(idle / TICKS)));
    timer.unref();
  }

  // A side that was already closed, ended or finished before the tunnel was made.
  if (a.destroyed || b.destroyed) queueMicrotask(() => finish('destroyed'));
  else {
    if (a.writableFinished) onAFinish();
    if (b.writableFinished) onBFinish();
    if (a.readableEnded) onAEnd();
    if (b.readableEnded) onBEnd();
  }

  return {
    closed,
    destroy: (err?: Error) => finish(err === undefined ? 'destroyed' : 'error', err),
  };
}
