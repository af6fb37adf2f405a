/**
 * Plain HTTP forwarding through http-proxy-3, behind a small adapter: the host has already made
 * (and checked) the upstream connection, or it is an Intercept's virtual connection, so the
 * proxy is handed that one socket through a one-socket agent.
 *
 * http-proxy-3 is imported on the first forwarded request: a proxy that only tunnels (CONNECT,
 * tls_bridge, sni_router) never holds its 1.7 MB of code and keeps its heap small (README,
 * "Memory and GC").
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyServer } from 'http-proxy-3';

class OneSocketAgent extends http.Agent {
  #socket: Duplex;
  constructor(socket: Duplex) {
    super({ keepAlive: false });
    this.#socket = socket;
  }
  override createConnection(): Duplex {
    return this.#socket;
  }
}

export interface ForwardOptions {
  /** Connected upstream (socket, TLS socket or virtual connection). */
  readonly socket: Duplex;
  /** Origin as `host:port` (IPv6 in brackets), used for the request line's target only. */
  readonly authority: string;
  /** Response inactivity timeout in ms. */
  readonly timeoutMs: number;
}

export class Forwarder {
  #proxy: Promise<ProxyServer> | null = null;
  #waiting = new WeakMap<IncomingMessage, (res: IncomingMessage) => void>();

  #load(): Promise<ProxyServer> {
    this.#proxy ??= import('http-proxy-3').then(({ createProxyServer }) => {
      const proxy = createProxyServer({ selfHandleResponse: true, xfwd: false, ws: false });
      proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
        const cb = this.#waiting.get(req);
        this.#waiting.delete(req);
        cb?.(proxyRes);
      });
      return proxy;
    });
    return this.#proxy;
  }

  /** Send `req` (its url already origin-form, its headers final) upstream; `onResponse` gets the reply. */
  async web(req: IncomingMessage, res: ServerResponse, o: ForwardOptions, onResponse: (r: IncomingMessage) => void, onError: (err: Error) => void): Promise<void> {
    const proxy = await this.#load();
    this.#waiting.set(req, onResponse);
    proxy.web(
      req,
      res,
      { target: `http://${o.authority}`, agent: new OneSocketAgent(o.socket), proxyTimeout: o.timeoutMs },
      (err: Error) => {
        this.#waiting.delete(req);
        onError(err);
      },
    );
  }
}
