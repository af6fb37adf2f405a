/**
 * Pre-warmed TLS connections, like ATS's tunnel_prewarm but for plugins' internal
 * `CONNECT https://` tunnels (tls_bridge's peers). Per target, `min` spare connections that have
 * finished TCP, TLS and the server's verdict on our certificate wait for the next tunnel, so a
 * bridged CONNECT does not pay for that set-up while its client waits.
 *
 * - Demand-driven: a target gets a pool on its first take, and each take, hit or miss, tops the
 *   pool back up to `min` spares. Nothing is dialled to a target nobody asked for.
 * - A spare that errors, closes or receives a byte (a peer never speaks first) is dropped. One
 *   unused for `inactiveTimeoutMs` is closed and not replaced, so an unused pool empties.
 * - A failed top-up is not retried until the next take asks for that target again.
 */
import type { Duplex } from 'node:stream';
import { diags } from '../diags.js';
import { handOff } from './dial.js';

const dbg = diags.dbgCtl('prewarm');

export interface PrewarmOptions {
  /** Spare connections kept per target. */
  readonly min: number;
  readonly inactiveTimeoutMs: number;
}

/** A connection made for a pool: its socket and the address it reached. A taken socket is paused. */
export interface Warmed {
  readonly socket: Duplex;
  readonly address: string;
}

interface Spare {
  readonly warmed: Warmed;
  /** Detach the pool's listeners and timer (the socket is handed on, or being destroyed). */
  readonly release: () => void;
}

interface Target {
  readonly spares: Spare[];
  dialing: number;
}

export class PrewarmPool {
  readonly #opts: PrewarmOptions;
  readonly #dial: (host: string, port: number) => Promise<Warmed | null>;
  readonly #targets = new Map<string, Target>();
  #closed = false;

  /** `dial` opens one ready connection, or resolves null (or rejects) when it cannot. */
  constructor(opts: PrewarmOptions, dial: (host: string, port: number) => Promise<Warmed | null>) {
    this.#opts = opts;
    this.#dial = dial;
  }

  /** A ready connection to `host:port`, or null (then the caller dials); either way the pool is topped up. */
  take(host: string, port: number): Warmed | null {
    if (this.#closed) return null;
    const key = `${host}:${port}`;
    let target = this.#targets.get(key);
    if (target === undefined) {
      target = { spares: [], dialing: 0 };
      this.#targets.set(key, target);
    }
    // The newest spare: the oldest are the ones left to time out when demand falls.
    const spare = target.spares.pop();
    spare?.release();
    if (dbg.on) dbg('%s: %s, %d spare', key, spare ? 'hit' : 'miss', target.spares.length);
    this.#topUp(key, target, host, port);
    if (spare === undefined) return null;
    handOff(spare.warmed.socket);
    return spare.warmed;
  }

  /** Close every spare; later takes return null. */
  close(): void {
    this.#closed = true;
    for (const target of this.#targets.values()) {
      for (const spare of target.spares.splice(0)) {
        spare.release();
        spare.warmed.socket.destroy();
      }
    }
    this.#targets.clear();
  }

  #topUp(key: string, target: Target, host: string, port: number): void {
    while (target.spares.length + target.dialing < this.#opts.min) {
      target.dialing++;
      const settle = (warmed: Warmed | null): void => {
        target.dialing--;
        if (warmed === null) return;
        if (this.#closed) warmed.socket.destroy();
        else this.#keep(key, target, warmed);
      };
      this.#dial(host, port).then(settle, (err: unknown) => {
        if (dbg.on) dbg('%s: top-up failed: %s', key, err instanceof Error ? err.message : String(err));
        settle(null);
      });
    }
  }

  #keep(key: string, target: Target, warmed: Warmed): void {
    const s = warmed.socket;
    const drop = (why: string) => (): void => {
      const i = target.spares.indexOf(spare);
      if (i < 0) return;
      target.spares.splice(i, 1);
      spare.release();
      s.destroy();
      if (dbg.on) dbg('%s: spare dropped (%s), %d spare', key, why, target.spares.length);
    };
    const onError = drop('error');
    const onClose = drop('closed by the peer');
    const onData = drop('the peer sent bytes first');
    const timer = setTimeout(drop('unused'), this.#opts.inactiveTimeoutMs);
    timer.unref();
    const spare: Spare = {
      warmed,
      release: () => {
        clearTimeout(timer);
        s.off('error', onError);
        s.off('close', onClose);
        s.off('end', onClose);
        s.off('data', onData);
        s.pause();
      },
    };
    s.on('error', onError);
    s.on('close', onClose);
    s.on('end', onClose);
    // Flowing, so a FIN or a stray byte is seen while the spare waits.
    s.on('data', onData);
    target.spares.push(spare);
    if (dbg.on) dbg('%s: spare ready (%s), %d spare', key, warmed.address, target.spares.length);
  }
}
