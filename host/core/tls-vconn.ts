/** The inbound TLS connection that VCONN_START / SSL_CLIENT_HELLO / VCONN_CLOSE hooks see. */
import type { Socket } from 'node:net';
import { Event } from '../api/events.js';
import type { VConnHookIdT } from '../api/events.js';
import type { Addr, TlsVConn, TunnelTarget, VConnHook } from '../api/types.js';
import type { HostContext } from './context.js';
import { Resumer, runChain } from './hooks.js';
import type { ChainResult } from './hooks.js';

let nextVcId = 1;

export type VcDecision =
  | { readonly kind: 'tunnel'; readonly target: TunnelTarget }
  | { readonly kind: 'forward'; readonly target: TunnelTarget; readonly tls: boolean; readonly alpn: readonly string[] }
  | { readonly kind: 'reject'; readonly reason: string };

export function addrOf(address: string | undefined, port: number | undefined): Addr {
  const a = (address ?? '0.0.0.0').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return { address: a, port: port ?? 0, family: a.includes(':') ? 'IPv6' : 'IPv4' };
}

export class InboundTlsVConn implements TlsVConn {
  readonly id = nextVcId++;
  readonly clientAddr: Addr;
  readonly localAddr: Addr;
  sni: string | null = null;
  alpn: readonly string[] = [];
  clientHello: Buffer | null = null;
  decision: VcDecision | null = null;
  readonly #resumer = new Resumer(`vconn ${this.id}`);

  constructor(socket: Socket) {
    this.clientAddr = addrOf(socket.remoteAddress, socket.remotePort);
    this.localAddr = addrOf(socket.localAddress, socket.localPort);
  }

  reenable(ok = true): void {
    if (this.decision) return;
    this.#resumer.resume(ok ? Event.HttpContinue : Event.HttpError);
  }

  tunnel(target: TunnelTarget): void {
    this.#decide({ kind: 'tunnel', target });
  }

  forward(target: TunnelTarget, opts?: { tls?: boolean; alpn?: readonly string[] }): void {
    this.#decide({ kind: 'forward', target, tls: opts?.tls === true, alpn: opts?.alpn ?? [] });
  }

  reject(reason: string): void {
    this.#decide({ kind: 'reject', reason });
  }

  #decide(d: VcDecision): void {
    if (this.decision) return;
    this.decision = d;
    try {
      this.#resumer.resume(Event.HttpContinue);
    } catch {
      // Decided outside a hook call (e.g. after it resumed): the decision still stands.
    }
  }

  /** Run one TLS hook point; stops at the first decision or error. */
  run(ctx: HostContext, id: VConnHookIdT): ChainResult | Promise<ChainResult> {
    const list = ctx.hooks.vconn(id);
    if (list.length === 0) return { ok: true };
    return runChain<VConnHook>(
      [() => list],
      (entry) => entry.fn(this, id),
      this.#resumer,
      id,
      ctx.hookDeadlineMs,
      () => this.decision !== null,
    );
  }
}
