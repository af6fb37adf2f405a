/**
 * The one tunnel primitive: relays a ⇄ b for CONNECT, intercepted CONNECT, VConn tunnels and the
 * SNI router. Nothing else in the host copies bytes both ways.
 *
 * - Back-pressure: a reader is paused while its writer's `write()` returns false and resumed on
 *   'drain', so at most about one high-water mark per side is buffered whatever the peers do.
 * - Half-close: 'end' on one side ends the other side's writable and the reverse direction keeps
 *   flowing; the tunnel closes when both directions have ended and flushed.
 * - Inactivity: one timer per relay ticks every idleTimeoutMs/4 and compares the byte counters;
 *   four quiet ticks in a row destroy both sides (reason 'timeout'). Nothing is allocated per chunk.
 * - An error or close on one side destroys the other at once. Unless both directions finished,
 *   both sides are reset (RST), so a peer never mistakes a failed tunnel for a finished one.
 *   Cleanup and `onClose` run once per tunnel.
 * - Joining through a virtual connection (`joinVConns`, for the host's own tunnel to an
 *   Intercept): when a side is one end of a virtual connection whose other end is a side of a
 *   running tunnel (a plugin that tunnelled its intercepted VConn, as tls_bridge does), the two
 *   become ONE relay between their outer sides, after the bytes waiting inside the pair, so a
 *   chunk crosses one relay instead of two. The bypassed ends leave the data path: they are closed
 *   with the relay, and closing one of them closes the relay. Each tunnel keeps its own handle,
 *   stats (bytes in its own a → b / b → a sense) and onClose. Plugins' tunnels never join: a plugin
 *   may watch its VConn's events (tls_bridge reads the peer's first byte on its outbound leg).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Tunnel, TunnelOptions, TunnelStats } from '../api/types.js';
import { diags } from '../diags.js';
import { VConnEnd } from './vconn-pair.js';

const dbg = diags.dbgCtl('http_tunnel');

/** Quiet ticks that make an idle timeout; the timeout fires within idleTimeoutMs·(1 + 1/TICKS). */
const TICKS = 4;
const noop = (): void => undefined;

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

/** One createTunnel() call: its handle's view of whichever relay now carries its bytes. */
interface Member {
  readonly onClose: ((s: TunnelStats) => void) | undefined;
  readonly resolve: (s: TunnelStats) => void;
  /** Set once the relay is made (a tunnel that joins others is counted before its relay exists). */
  relay: Relay | null;
  /** Whether this tunnel's a → b is the relay's x → y (else y → x). */
  forward: boolean;
  /** Bytes counted before the current relay, in this tunnel's a → b / b → a sense. */
  aToB: number;
  bToA: number;
}

/** The relay each side belongs to (for the shared listeners below, and for joining). */
const relayOf = new WeakMap<Duplex, Relay>();
/** The relay each bypassed end belongs to. */
const bypassedIn = new WeakMap<Duplex, Relay>();

// One set of listeners for every relay (`this` is the stream): nothing is allocated per relay
// or per chunk for them.
function onData(this: Duplex, chunk: Buffer): void {
  relayOf.get(this)?.move(this, chunk);
}
function onDrain(this: Duplex): void {
  relayOf.get(this)?.other(this).resume();
}
function onEnd(this: Duplex): void {
  relayOf.get(this)?.ended(this);
}
function onFinish(this: Duplex): void {
  relayOf.get(this)?.finished(this);
}
function onSideClose(this: Duplex): void {
  relayOf.get(this)?.sideClosed(this);
}
function onError(this: Duplex, err: Error): void {
  relayOf.get(this)?.finish('error', err);
}
function onBypassedClose(this: Duplex): void {
  bypassedIn.get(this)?.finish('destroyed');
}
function tick(r: Relay): void {
  r.tick();
}

const SIDE_LISTENERS = [
  ['data', onData],
  ['drain', onDrain],
  ['end', onEnd],
  ['finish', onFinish],
  ['close', onSideClose],
  ['error', onError],
] as const;

class Relay {
  readonly x: Duplex;
  readonly y: Duplex;
  readonly members: Member[];
  /** Virtual connection ends taken out of the data path, closed with the relay. */
  readonly bypassed: readonly Duplex[];
  readonly idleMs: number;
  toY = 0;
  toX = 0;
  #xEnded = false;
  #yEnded = false;
  #xFinished = false;
  #yFinished = false;
  #done = false;
  #timer: NodeJS.Timeout | null = null;
  #seen = 0;
  #quiet = 0;

  constructor(x: Duplex, y: Duplex, members: Member[], bypassed: readonly Duplex[], idleMs: number) {
    this.x = x;
    this.y = y;
    this.members = members;
    this.bypassed = bypassed;
    this.idleMs = idleMs;
  }

  /** Running, with no direction ended yet: it may be joined. */
  get joinable(): boolean {
    return !this.#done && !this.#xEnded && !this.#yEnded && !this.#xFinished && !this.#yFinished;
  }

  other(s: Duplex): Duplex {
    return s === this.x ? this.y : this.x;
  }

  move(from: Duplex, chunk: Buffer): void {
    const to = from === this.x ? this.y : this.x;
    if (to === this.y) this.toY += chunk.length;
    else this.toX += chunk.length;
    if (!to.write(chunk)) from.pause();
  }

  ended(s: Duplex): void {
    if (s === this.x) this.#xEnded = true;
    else this.#yEnded = true;
    if (!this.#done) this.other(s).end();
    this.#maybeDone();
  }

  finished(s: Duplex): void {
    if (s === this.x) this.#xFinished = true;
    else this.#yFinished = true;
    this.#maybeDone();
  }

  /** A side that ended and finished by itself may close before the other side has flushed. */
  sideClosed(s: Duplex): void {
    const selfDone = s === this.x ? this.#xEnded && this.#xFinished : this.#yEnded && this.#yFinished;
    if (!selfDone) this.finish('destroyed');
  }

  tick(): void {
    const total = this.toX + this.toY;
    if (total !== this.#seen) {
      this.#seen = total;
      this.#quiet = 0;
    } else if (++this.#quiet >= TICKS) {
      this.finish('timeout');
      return;
    }
    this.#timer?.refresh();
  }

  /** Attach to both sides, write the heads, start flowing (and the idle timer when idleMs > 0). */
  start(headsToY: readonly Buffer[], headsToX: readonly Buffer[]): void {
    const { x, y, idleMs } = this;
    relayOf.set(x, this);
    relayOf.set(y, this);
    for (const s of [x, y]) {
      s.allowHalfOpen = true;
      if (s instanceof net.Socket) s.setNoDelay(true);
      // Kept for good: a closed side may still report an error (a reset) after the relay is gone.
      s.on('error', noop);
      for (const [event, fn] of SIDE_LISTENERS) if (event !== 'data') s.on(event, fn);
    }
    for (const s of this.bypassed) {
      bypassedIn.set(s, this);
      s.on('error', noop);
      s.on('close', onBypassedClose);
    }
    for (const h of headsToY) if (h.length > 0 && !y.write(h)) x.pause();
    for (const h of headsToX) if (h.length > 0 && !x.write(h)) y.pause();
    x.on('data', onData);
    y.on('data', onData);
    if (!y.writableNeedDrain) x.resume();
    if (!x.writableNeedDrain) y.resume();

    if (idleMs > 0) {
      this.#seen = this.toX + this.toY;
      this.#timer = setTimeout(tick, Math.max(1, Math.ceil(idleMs / TICKS)), this);
      this.#timer.unref();
    }

    // A side that was already closed, ended or finished before the tunnel was made.
    if (x.destroyed || y.destroyed) queueMicrotask(() => this.finish('destroyed'));
    else {
      if (x.writableFinished) this.finished(x);
      if (y.writableFinished) this.finished(y);
      if (x.readableEnded) this.ended(x);
      if (y.readableEnded) this.ended(y);
    }
  }

  /** Stop relaying (the relay is being joined into a new one, or is done): listeners and timer go, sides stay open. */
  detach(): void {
    this.#done = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const s of [this.x, this.y]) {
      for (const [event, fn] of SIDE_LISTENERS) s.off(event, fn);
      if (relayOf.get(s) === this) relayOf.delete(s);
    }
    for (const s of this.bypassed) {
      s.off('close', onBypassedClose);
      bypassedIn.delete(s);
    }
  }

  /** This member's bytes so far, in its own sense; then it is counted afresh by the next relay. */
  settle(m: Member): void {
    m.aToB += m.forward ? this.toY : this.toX;
    m.bToA += m.forward ? this.toX : this.toY;
  }

  #maybeDone(): void {
    if (this.#xEnded && this.#yEnded && this.#xFinished && this.#yFinished) this.finish('done');
  }

  finish(reason: TunnelStats['reason'], error?: Error): void {
    if (this.#done) return;
    this.detach();
    const close = reason === 'done' ? (s: Duplex) => s.destroy() : reset;
    close(this.x);
    close(this.y);
    for (const s of this.bypassed) close(s);
    for (const m of this.members) {
      this.settle(m);
      const stats: TunnelStats = error === undefined ? { aToB: m.aToB, bToA: m.bToA, reason } : { aToB: m.aToB, bToA: m.bToA, reason, error };
      if (dbg.on) dbg('tunnel closed: %s, %d bytes a→b, %d bytes b→a%s', reason, stats.aToB, stats.bToA, error ? `: ${error.message}` : '');
      if (m.onClose !== undefined) {
        try {
          m.onClose(stats);
        } catch (e) {
          diags.error('tunnel onClose threw: %s', e instanceof Error ? e.message : String(e));
        }
      }
      m.resolve(stats);
    }
  }
}

/** Count `n` bytes for a tunnel, in the relay's direction toward y (`toY`) or toward x. */
function count(m: Member, toY: boolean, n: number): void {
  if (m.forward === toY) m.aToB += n;
  else m.bToA += n;
}

/** Every byte waiting in a paused stream's readable buffer. */
function drain(s: Duplex): Buffer[] {
  s.pause();
  const out: Buffer[] = [];
  for (let chunk = s.read() as Buffer | null; chunk !== null; chunk = s.read() as Buffer | null) out.push(chunk);
  return out;
}

/** The running relay behind `s`, when `s` is a clean virtual connection end whose peer is a side of it. */
function joinableThrough(s: Duplex, other: Duplex): { relay: Relay; peer: VConnEnd } | null {
  if (!(s instanceof VConnEnd)) return null;
  const peer = s.peerEnd;
  if (peer === null) return null;
  const relay = relayOf.get(peer);
  if (relay === undefined || !relay.joinable || relay.other(peer) === other) return null;
  for (const e of [s, peer]) if (e.destroyed || e.readableEnded || e.writableEnded) return null;
  return { relay, peer };
}

/**
 * Relay bytes between `a` and `b` until both directions end, one side fails, the tunnel is idle
 * for `opts.idleTimeoutMs`, or `destroy()` is called. `headToB` / `headToA` are written first and
 * count in `aToB` / `bToA`. Both sides are switched to `allowHalfOpen` and, for sockets, no Nagle.
 * After this call the tunnel owns `a` and `b`: nothing else may read or write them.
 */
export function createTunnel(a: Duplex, b: Duplex, opts: TunnelOptions & { readonly joinVConns?: boolean } = {}): Tunnel {
  let resolveClosed: (s: TunnelStats) => void = () => {};
  const closed = new Promise<TunnelStats>((resolve) => {
    resolveClosed = resolve;
  });
  const self: Member = {
    onClose: opts.onClose,
    resolve: resolveClosed,
    relay: null,
    forward: true,
    aToB: opts.headToB?.length ?? 0,
    bToA: opts.headToA?.length ?? 0,
  };
  const sides: [Duplex, Duplex] = [a, b];
  let headsToY: Buffer[] = opts.headToB !== undefined ? [opts.headToB] : [];
  let headsToX: Buffer[] = opts.headToA !== undefined ? [opts.headToA] : [];
  let members: Member[] = [self];
  let bypassed: Duplex[] = [];
  let idleMs = opts.idleTimeoutMs ?? 0;

  // Join through a virtual connection on either side, as long as there is one to join through.
  for (const i of opts.joinVConns === true ? ([1, 0] as const) : []) {
    for (let j = joinableThrough(sides[i], sides[1 - i]!); j !== null; j = joinableThrough(sides[i], sides[1 - i]!)) {
      const s = sides[i];
      const { relay: q, peer: p } = j;
      const v = q.other(p);
      q.detach();
      // Bytes waiting inside the pair go first: those in `s` came from v (toward our other side),
      // those in `p` were written into `s` (toward v).
      const fromV = drain(s);
      const toV = drain(p);
      // q's sense: toward p continues through the pair to our other side.
      const qForwardIsTowardP = q.x === v;
      for (const m of q.members) {
        q.settle(m);
        const towardP = m.forward === qForwardIsTowardP;
        m.forward = i === 1 ? !towardP : towardP;
      }
      // Count what each tunnel would have relayed had the pair stayed: the bytes from v for every
      // tunnel on this side of the pair; those toward v, and the heads still queued toward it, for q's.
      const vIsY = i === 1;
      for (const m of members) for (const c of fromV) count(m, !vIsY, c.length);
      for (const m of q.members) for (const c of [...toV, ...(vIsY ? headsToY : headsToX)]) count(m, vIsY, c.length);
      if (vIsY) {
        headsToX = [...headsToX, ...fromV];
        headsToY = [...toV, ...headsToY];
      } else {
        headsToY = [...headsToY, ...fromV];
        headsToX = [...toV, ...headsToX];
      }
      members = [...members, ...q.members];
      bypassed = [...bypassed, s, p, ...q.bypassed];
      if (q.idleMs > 0 && (idleMs === 0 || q.idleMs < idleMs)) idleMs = q.idleMs;
      sides[i] = v;
      if (dbg.on) dbg('tunnel joined through a virtual connection');
    }
  }

  const relay = new Relay(sides[0], sides[1], members, bypassed, idleMs);
  for (const m of members) m.relay = relay;
  relay.start(headsToY, headsToX);
  return {
    closed,
    destroy: (err?: Error) => self.relay?.finish(err === undefined ? 'destroyed' : 'error', err),
  };
}
