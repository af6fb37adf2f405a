/**
 * Listeners: one net.Server per server_ports descriptor. Plain and `blind` ports hand sockets
 * to the HTTP state machine; `ssl` ports run VCONN_START, peek the ClientHello (bounded in size
 * and time) when SSL_CLIENT_HELLO hooks exist and run them, then blind-tunnel, forward, reject,
 * or terminate TLS with the certificate ssl_multicert.config selects and carry on as HTTP.
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { VConnHookId } from '../api/events.js';
import { connectPortAllowed } from '../config/ports.js';
import type { PortDescriptor } from '../config/types.js';
import { diags } from '../diags.js';
import { peekClientHello } from '../net/tls-peek.js';
import type { ServerTls } from '../net/tls-context.js';
import { createTunnel } from '../net/tunnel.js';
import type { HostContext } from './context.js';
import type { HttpStateMachine } from './http-sm.js';
import { addrOf, InboundTlsVConn } from './tls-vconn.js';
import type { VcDecision } from './tls-vconn.js';
import { dialUpstream, isOk } from './upstream.js';

const dbgSsl = diags.dbgCtl('ssl');
const dbgSni = diags.dbgCtl('ssl_sni');
const noop = (): void => undefined;

/** A fatal TLS alert record (access_denied, 49) for a connection refused before the handshake. */
const ALERT_ACCESS_DENIED = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]);

export type PortKind = 'http' | 'ssl' | 'blind';

export interface Bound {
  readonly desc: PortDescriptor;
  readonly kind: PortKind;
  readonly address: string;
  readonly port: number;
  readonly server: net.Server;
}

export function kindOf(d: PortDescriptor): PortKind {
  return d.ssl ? 'ssl' : d.blind ? 'blind' : 'http';
}

/** Bind one descriptor. Resolves once listening. */
export function listen(d: PortDescriptor, accept: (s: Socket) => void, backlogLimit: number): Promise<Bound> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, accept);
  if (backlogLimit > 0) server.maxConnections = backlogLimit;
  const host = d.ipIn ?? (d.family === 6 ? '::' : '0.0.0.0');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: d.port, host, ipv6Only: d.family === 6 }, () => {
      server.off('error', reject);
      server.on('error', (err) => diags.error('listener %s: %s', d.text, err.message));
      const a = server.address() as net.AddressInfo;
      resolve({ desc: d, kind: kindOf(d), address: a.address, port: a.port, server });
    });
  });
}

/**
 * Accept handling for one generation. `sm` serves HTTP; `serverTls` is null when no ssl port
 * exists (then no certificate is needed).
 */
export class Acceptor {
  readonly #ctx: HostContext;
  readonly #sm: HttpStateMachine;
  readonly #tls: tls.Server | null;

  constructor(ctx: HostContext, sm: HttpStateMachine, serverTls: ServerTls | null, ticketKeys?: Buffer) {
    this.#ctx = ctx;
    this.#sm = sm;
    this.#tls = serverTls ? this.#tlsServer(serverTls, ticketKeys) : null;
  }

  /** Every accepted connection still open (sessions, handshakes, blind tunnels). */
  readonly #sockets = new Set<Socket>();

  /** Close every accepted connection (the end of a drain). */
  destroyAll(): void {
    // A forced close is a reset, so a client holding a half-open or keep-alive connection sees it.
    for (const s of this.#sockets) {
      if (s.writableEnded) s.destroy();
      else s.resetAndDestroy();
    }
  }

  accept(kind: PortKind, socket: Socket): void {
    socket.on('error', noop);
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.setNoDelay(true);
    const ctx = this.#ctx;
    const d = ctx.config.ipAllow.acceptIn(addrOf(socket.remoteAddress, 0).address);
    if (!d.allow) {
      ctx.stats.inc('ip_allow.denied_accept');
      socket.destroy();
      return;
    }
    ctx.stats.inc(`accept.${kind}`);
    if (kind === 'ssl') {
      void this.#acceptTls(socket).catch((err: unknown) => {
        diags.error('ssl accept: %s', (err as Error)?.stack ?? String(err));
        socket.destroy();
      });
      return;
    }
    this.#session(socket, socket, kind === 'blind');
  }

  #session(socket: net.Socket | TLSSocket, raw: Socket, blind: boolean): void {
    this.#sm.startSession({
      socket,
      clientAddr: addrOf(raw.remoteAddress, raw.remotePort),
      localPort: raw.localPort ?? 0,
      isInternal: false,
      pluginTag: null,
      pluginId: null,
      blind,
    });
  }

  #tlsServer(st: ServerTls, ticketKeys: Buffer | undefined): tls.Server {
    const rec = this.#ctx.config.records;
    const srv = tls.createServer({
      ...st.options(),
      handshakeTimeout: rec.handshakeTimeoutIn * 1000,
      ...(ticketKeys !== undefined ? { ticketKeys } : {}),
    });
    srv.on('secureConnection', (s: TLSSocket) => {
      s.setNoDelay(true);
      const key = `${s.remoteAddress}:${s.remotePort}`;
      const fwd = this.#forwards.get(key);
      if (fwd) {
        this.#forwards.delete(key);
        void this.#forward(s, fwd);
        return;
      }
      if (dbgSsl.on) dbgSsl('handshake done with %s:%d (%s), client certificate %s', s.remoteAddress, s.remotePort, s.getProtocol(), s.authorized ? 'verified' : 'none');
      this.#session(s, s as unknown as Socket, false);
    });
    srv.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
      this.#ctx.stats.inc('ssl.handshake_error');
      this.#forwards.delete(`${s.remoteAddress}:${s.remotePort}`);
      if (dbgSsl.on) dbgSsl('handshake with %s failed: %s', s.remoteAddress, err.code ?? err.message);
      s.destroy();
    });
    return srv;
  }

  /** Sockets terminated for a forward route, by client address and port. */
  readonly #forwards = new Map<string, Extract<VcDecision, { kind: 'forward' }>>();

  async #acceptTls(socket: Socket): Promise<void> {
    const ctx = this.#ctx;
    const vc = new InboundTlsVConn(socket);
    socket.once('close', () => void vc.run(ctx, VConnHookId.VconnClose));
    let r = await vc.run(ctx, VConnHookId.VconnStart);
    if (!r.ok) return void socket.destroy();
    let raw: Buffer = Buffer.alloc(0);
    // Peek only when an SSL_CLIENT_HELLO hook will read it: bytes read in JS and replayed leave
    // Node's TLS input buffers fragmented (reads of ~8 KB instead of 64 KB for the connection's
    // life). Certificate choice by SNI does not need the peek (SNICallback).
    if (!vc.decision && ctx.hooks.vconn(VConnHookId.SslClientHello).length > 0) {
      const peek = await peekClientHello(socket, { timeoutMs: ctx.config.records.handshakeTimeoutIn * 1000 });
      if (peek.kind !== 'hello') {
        ctx.stats.inc(`ssl.peek_${peek.kind}`);
        if (dbgSsl.on) dbgSsl('ClientHello from %s:%d: %s (%s)', vc.clientAddr.address, vc.clientAddr.port, peek.kind, peek.reason);
        socket.destroy();
        return;
      }
      raw = peek.raw;
      vc.sni = peek.hello.sni;
      vc.alpn = peek.hello.alpn;
      vc.clientHello = raw;
      if (dbgSni.on && vc.sni === null) dbgSni('No servername provided');
      r = await vc.run(ctx, VConnHookId.SslClientHello);
      if (!r.ok) return void socket.destroy();
    }
    const d = vc.decision;
    if (d === null) return this.#terminate(socket, raw);
    if (dbgSni.on && d.kind !== 'reject') dbgSni('Destination now is [%s:%d], fqdn [%s]', d.target.host, d.target.port, vc.sni ?? '');
    switch (d.kind) {
      case 'reject':
        ctx.stats.inc('ssl.rejected');
        socket.end(ALERT_ACCESS_DENIED);
        return;
      case 'tunnel':
        return this.#blindTunnel(socket, raw, d.target.host, d.target.port, d.target.dynamicPort === true);
      case 'forward':
        if (d.target && this.#tls) {
          this.#forwards.set(`${socket.remoteAddress}:${socket.remotePort}`, d);
          return this.#terminate(socket, raw);
        }
        socket.destroy();
    }
  }

  /** Terminate TLS here: replay the peeked bytes into Node's TLS server. */
  #terminate(socket: Socket, raw: Buffer): void {
    if (!this.#tls) {
      socket.destroy();
      return;
    }
    if (raw.length) socket.unshift(raw);
    this.#tls.emit('connection', socket);
  }

  async #blindTunnel(socket: Socket, raw: Buffer, host: string, port: number, dynamic: boolean): Promise<void> {
    const ctx = this.#ctx;
    if (dynamic && !connectPortAllowed(ctx.config.records.connectPorts, port)) {
      ctx.stats.inc('tunnel.port_forbidden');
      if (dbgSsl.on) dbgSsl('Rejected a tunnel to port %d not in connect_ports', port);
      socket.destroy();
      return;
    }
    const up = await dialUpstream(ctx, { host, port, tls: false, method: 'CONNECT' });
    if (!isOk(up)) {
      ctx.stats.inc(`tunnel.${up.type}`);
      if (dbgSsl.on) dbgSsl('tunnel to %s:%d failed: %d %s', host, port, up.status, up.reason);
      socket.destroy();
      return;
    }
    if (socket.destroyed) return void up.socket.destroy();
    ctx.stats.inc('tunnel.blind');
    createTunnel(socket, up.socket, { headToB: raw, idleTimeoutMs: ctx.config.records.noActivityTimeoutIn * 1000 });
    socket.resume();
  }

  /** forward_route / partial_blind_route: plaintext (or new TLS) to the target. */
  async #forward(s: TLSSocket, d: Extract<VcDecision, { kind: 'forward' }>): Promise<void> {
    const ctx = this.#ctx;
    s.on('error', noop);
    const up = await dialUpstream(ctx, { host: d.target.host, port: d.target.port, tls: d.tls, method: 'CONNECT', alpn: d.alpn });
    if (!isOk(up)) {
      ctx.stats.inc(`tunnel.${up.type}`);
      s.destroy();
      return;
    }
    if (s.destroyed) return void up.socket.destroy();
    ctx.stats.inc(d.tls ? 'tunnel.partial_blind' : 'tunnel.forward');
    createTunnel(s, up.socket, { idleTimeoutMs: ctx.config.records.noActivityTimeoutIn * 1000 });
  }
}
