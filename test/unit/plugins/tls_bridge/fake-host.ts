/**
 * A stand-in for the host's side of the plugin API, for tls_bridge's unit tests: a transaction that
 * records what the plugin did, in-process duplex pairs, and a tunnel built from two pipes.
 * (The real host, with real sockets and TLS, is exercised by test/integration/tls-bridge*.test.ts.)
 */
import { Duplex } from 'node:stream';
import { format } from 'node:util';
import type { Api, DbgCtl, EventId, Hook, HttpHdr, Tunnel, TunnelOptions, Txn, VConn } from '../../../../host/api/index.js';

/** Two connected ends: bytes written to one are read from the other; end() is EOF on the peer. */
export function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      allowHalfOpen: true,
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        if (!peer().destroyed) peer().destroy();
        cb(err);
      },
    });
  ends.push(make(() => ends[1] as Duplex), make(() => ends[0] as Duplex));
  return [ends[0] as Duplex, ends[1] as Duplex];
}

/** Collects everything a readable end yields; `text()` is what arrived so far. */
export class Sink {
  readonly #chunks: Buffer[] = [];
  readonly stream: Duplex;
  ended = false;
  constructor(stream: Duplex) {
    this.stream = stream;
    stream.on('data', (c: Buffer) => this.#chunks.push(c));
    stream.on('end', () => {
      this.ended = true;
    });
    stream.on('error', () => undefined);
  }
  text(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }
  /** Resolves once `pred` holds (checked on every chunk and end), or rejects after `ms`. */
  until(pred: (s: Sink) => boolean, ms = 2000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred(this)) return;
        clearTimeout(timer);
        this.stream.off('data', check);
        this.stream.off('end', check);
        resolve();
      };
      const timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(this.text())}`)), ms);
      this.stream.on('data', check);
      this.stream.on('end', check);
      queueMicrotask(check);
    });
  }
}

export interface FakeResp {
  status: number;
  reason: string;
  deleted: string[];
}

export class FakeTxn {
  readonly id: number;
  isInternal = false;
  readonly clientAddr = { address: '127.0.0.1', port: 50000, family: 'IPv4' as const };
  readonly clientReq: { method: string; host: string | null };
  resp: FakeResp | null = null;
  readonly statuses: [number, string | undefined][] = [];
  readonly reenables: number[] = [];
  readonly hooks: [number, Hook][] = [];
  readonly cntl: [string, boolean][] = [];
  onAccept: ((vc: VConn) => void) | null = null;
  interceptThrows = false;

  constructor(id: number, method: string, host: string | null) {
    this.id = id;
    this.clientReq = { method, host };
  }
  get clientResp(): HttpHdr | null {
    const r = this.resp;
    if (r === null) return null;
    return {
      get status() {
        return r.status;
      },
      set status(v: number) {
        r.status = v;
      },
      get reason() {
        return r.reason;
      },
      set reason(v: string) {
        r.reason = v;
      },
      delete: (name: string) => {
        r.deleted.push(name);
        return true;
      },
    } as unknown as HttpHdr;
  }
  statusSet(code: number, reason?: string): void {
    this.statuses.push([code, reason]);
  }
  reenable(ev: number): void {
    this.reenables.push(ev);
  }
  hookAdd(id: number, hook: Hook): void {
    this.hooks.push([id, hook]);
  }
  cntlSet(c: string, on: boolean): void {
    this.cntl.push([c, on]);
  }
  intercept(cb: (vc: VConn) => void): void {
    if (this.interceptThrows) throw new Error('already intercepted');
    this.onAccept = cb;
  }
  asTxn(): Txn {
    return this as unknown as Txn;
  }
  /** Run a hook the plugin added for `event`'s hook id, as the host would. */
  fire(hookId: number, event: EventId): void {
    for (const [id, hook] of this.hooks) if (id === hookId) hook(this as unknown as Parameters<Hook>[0], event);
  }
}

export interface TunnelCall {
  readonly a: VConn;
  readonly b: VConn;
  readonly opts: TunnelOptions | undefined;
  destroyed: number;
}

/** An Api whose httpConnect hands out pairs (the test holds the host's end). */
export class FakeApi {
  readonly debug: string[] = [];
  readonly errors: string[] = [];
  readonly notes: string[] = [];
  readonly hostEnds: Duplex[] = [];
  readonly connects: { addr: unknown; tag?: string; id?: number }[] = [];
  readonly tunnels: TunnelCall[] = [];
  readonly globalHooks: [number, Hook][] = [];
  connectThrows = false;
  configDir = '/nonexistent';

  readonly dbg: DbgCtl = Object.assign(
    (fmt: string, ...args: unknown[]) => {
      this.debug.push(format(fmt, ...args));
    },
    { on: true, tag: 'tls_bridge' },
  );

  asApi(): Api {
    const self = this;
    return {
      configDir: this.configDir,
      pluginLine: { configDir: this.configDir, file: `${this.configDir}/plugin.config`, line: 1 },
      records: { get: () => undefined },
      httpHookAdd: (id: number, hook: Hook) => this.globalHooks.push([id, hook]),
      vconnHookAdd: () => undefined,
      asyncHook: () => {
        throw new Error('unused');
      },
      httpConnect(o: { addr: unknown; tag?: string; id?: number }) {
        if (self.connectThrows) throw new Error('no more connections');
        self.connects.push(o);
        const [hostEnd, pluginEnd] = duplexPair();
        self.hostEnds.push(hostEnd);
        return pluginEnd;
      },
      tunnel(a: VConn, b: VConn, opts?: TunnelOptions): Tunnel {
        const call: TunnelCall = { a, b, opts, destroyed: 0 };
        self.tunnels.push(call);
        if (opts?.headToA !== undefined) a.write(opts.headToA);
        a.pipe(b);
        b.pipe(a);
        return {
          closed: new Promise(() => undefined),
          destroy: () => {
            call.destroyed++;
          },
        };
      },
      dbgCtl: () => this.dbg,
      error: (fmt: string, ...args: unknown[]) => {
        this.errors.push(format(fmt, ...args));
      },
      note: (fmt: string, ...args: unknown[]) => {
        this.notes.push(format(fmt, ...args));
      },
    } as unknown as Api;
  }
}
