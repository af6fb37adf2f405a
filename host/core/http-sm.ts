/**
 * The HTTP state machine of one config generation: sessions, transactions and their hook points,
 * for requests (forwarded through http-proxy-3) and CONNECT tunnels. Inbound HTTP/1.1 is parsed
 * by node:http; a session's socket (real, TLS or virtual) is fed in with `emit('connection')`.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HookId } from '../api/events.js';
import { diags } from '../diags.js';
import { classify, failure } from '../net/proxy-status.js';
import type { Failure } from '../net/proxy-status.js';
import { createVConnPair } from '../net/vconn-pair.js';
import type { HostContext } from './context.js';
import { Forwarder } from './forward.js';
import { Hdr } from './http-hdr.js';
import { ssnHook, txnHook } from './hook-points.js';
import { connectFlow } from './connect-flow.js';
import { dialUpstream, isOk, remapFor } from './upstream.js';
import { failureReply, pluginErrorReply, writeRawReply, writeResReply } from './reply.js';
import type { Reply } from './reply.js';
import { Session } from './session.js';
import type { SessionInit } from './session.js';
import { HOP_BY_HOP, Transaction } from './txn.js';

const dbg = diags.dbgCtl('http');

export class HttpStateMachine {
  readonly ctx: HostContext;
  readonly server: http.Server;
  readonly #forwarder = new Forwarder();
  readonly #sessions = new WeakMap<object, Session>();
  readonly #open = new Set<Session>();

  constructor(ctx: HostContext) {
    this.ctx = ctx;
    const rec = ctx.config.records;
    const idleMs = rec.noActivityTimeoutIn * 1000;
    this.server = http.createServer({
      requireHostHeader: false,
      maxHeaderSize: rec.requestHeaderMaxSize,
      headersTimeout: idleMs,
      requestTimeout: 0,
      keepAliveTimeout: idleMs,
      connectionsCheckingInterval: Math.min(1000, idleMs),
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#onRequest(req, res));
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#onConnect(req, socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket));
  }

  /** Sessions open now (for drain on shutdown). */
  get openSessions(): number {
    return this.#open.size;
  }

  /** SSN_START, then hand the socket to the HTTP parser; SSN_CLOSE when it closes. */
  startSession(init: SessionInit): Session {
    const ssn = new Session(init);
    this.#sessions.set(init.socket, ssn);
    this.#open.add(ssn);
    init.socket.once('close', () => {
      this.#open.delete(ssn);
      void ssnHook(this.ctx, ssn, HookId.HttpSsnClose);
    });
    const go = (ok: boolean): void => {
      if (!ok) {
        init.socket.destroy();
        return;
      }
      this.server.emit('connection', init.socket);
    };
    const r = ssnHook(this.ctx, ssn, HookId.HttpSsnStart);
    if ('then' in r) r.then((x) => go(x.ok), () => go(false));
    else go(r.ok);
    return ssn;
  }

  /** Destroy every open session's socket (after a drain deadline). */
  destroyAll(): void {
    for (const s of this.#open) s.socket.destroy();
  }

  #newTxn(req: IncomingMessage): Transaction | null {
    const ssn = this.#sessions.get(req.socket);
    if (!ssn) {
      req.socket.destroy();
      return null;
    }
    const txn = new Transaction(
      ssn,
      new Hdr({ method: req.method ?? '', url: req.url ?? '', version: req.httpVersion, raw: req.rawHeaders }),
    );
    this.ctx.stats.inc('txn.total');
    if (dbg.on) dbg('transaction %d: %s %s (session %d%s)', txn.id, req.method, req.url, ssn.id, ssn.isInternal ? ', internal' : '');
    return txn;
  }

  // ------------------------------------------------------------------ CONNECT

  async #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const txn = this.#newTxn(req);
    if (!txn) return;
    try {
      await connectFlow(this.ctx, txn, socket, head);
    } catch (err) {
      diags.error('transaction %d: internal error: %s', txn.id, (err as Error)?.stack ?? String(err));
      socket.destroy();
    }
  }

  // ------------------------------------------------------------------ requests

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const txn = this.#newTxn(req);
    if (!txn) return;
    let closed = false;
    res.once('close', () => {
      if (closed) return;
      closed = true;
      void txnHook(this.ctx, txn, HookId.HttpTxnClose);
    });
    try {
      const reply = await this.#requestFlow(txn, req, res);
      if (reply) await this.#sendReply(txn, res, reply);
    } catch (err) {
      diags.error('transaction %d: internal error: %s', txn.id, (err as Error)?.stack ?? String(err));
      if (!res.headersSent) writeResReply(res, failureReply(failure('proxy_internal_error', 500, 'Internal Proxy Error')));
      else res.destroy();
    }
  }

  /** Returns a reply to send, or null when the response is under way. */
  async #requestFlow(txn: Transaction, req: IncomingMessage, res: ServerResponse): Promise<Reply | null> {
    const ctx = this.ctx;
    const ssn = txn.session;
    let r = await txnHook(ctx, txn, HookId.HttpTxnStart);
    if (!r.ok) return pluginErrorReply(txn.errorStatus, r.error);
    if (ssn.blind) return failureReply(failure('http_request_denied', 405, 'Method Not Allowed', 'this port accepts CONNECT only'));
    r = await txnHook(ctx, txn, HookId.HttpReadRequestHdr);
    if (!r.ok) return pluginErrorReply(txn.errorStatus, r.error);
    const denied = checkMethod(ctx, txn);
    if (denied) return denied;
    r = await txnHook(ctx, txn, HookId.HttpPreRemap);
    if (!r.ok) return pluginErrorReply(txn.errorStatus, r.error);

    const route = remapFor(ctx, txn, ssn.localPort, isTlsSocket(ssn.socket));
    if ('reply' in route) return route.reply;
    r = await txnHook(ctx, txn, HookId.HttpPostRemap);
    if (!r.ok) return pluginErrorReply(txn.errorStatus, r.error);

    let socket: Duplex;
    let authority: string;
    if (txn.interceptHandler) {
      socket = this.#intercept(txn);
      authority = route.target ? route.target.host : req.headers.host ?? 'localhost';
    } else {
      if (!route.target) return failureReply(failure('destination_not_found', 404, 'Not Found on Accelerator', 'no remap rule matched'));
      const up = await dialUpstream(ctx, {
        host: route.target.hostname,
        port: portOf(route.target),
        tls: route.target.protocol === 'https:',
        method: txn.clientReq.method,
      });
      if (!isOk(up)) return failureReply(up);
      socket = up.socket;
      authority = route.target.host;
      r = await txnHook(ctx, txn, HookId.HttpOsDns);
      if (!r.ok) {
        socket.destroy();
        return pluginErrorReply(txn.errorStatus, r.error);
      }
    }
    r = await txnHook(ctx, txn, HookId.HttpSendRequestHdr);
    if (!r.ok) {
      socket.destroy();
      return pluginErrorReply(txn.errorStatus, r.error);
    }
    applyRequestHeader(req, txn.clientReq, route.path, route.target && !txn.interceptHandler ? authority : null);
    await this.#forwarder.web(
      req,
      res,
      { socket, authority, timeoutMs: ctx.config.records.noActivityTimeoutOut * 1000 },
      (upRes) => void this.#onResponse(txn, res, upRes),
      (err) => {
        socket.destroy();
        if (res.headersSent) res.destroy();
        else void this.#sendReply(txn, res, failureReply(classify(err, 'read')));
      },
    );
    return null;
  }

  #intercept(txn: Transaction): Duplex {
    const [hostEnd, pluginEnd] = createVConnPair();
    const handler = txn.interceptHandler!;
    if (dbg.on) dbg('transaction %d: intercepted by %s', txn.id, txn.interceptPlugin);
    queueMicrotask(() => {
      try {
        handler(pluginEnd);
      } catch (err) {
        diags.error('[%s] plugin %s threw in its intercept: %s', 'PXY_ERR_HOOK_THREW', txn.interceptPlugin, (err as Error)?.message);
        pluginEnd.destroy();
      }
    });
    return hostEnd;
  }

  async #onResponse(txn: Transaction, res: ServerResponse, upRes: IncomingMessage): Promise<void> {
    txn.serverResp = new Hdr({ status: upRes.statusCode ?? 502, reason: upRes.statusMessage ?? '', version: upRes.httpVersion, raw: upRes.rawHeaders });
    let r = await txnHook(this.ctx, txn, HookId.HttpReadResponseHdr);
    if (!r.ok) {
      upRes.destroy();
      return this.#sendReply(txn, res, pluginErrorReply(txn.errorStatus, r.error));
    }
    const out = txn.serverResp.copy();
    for (const h of HOP_BY_HOP) out.delete(h);
    txn.clientResp = out;
    r = await txnHook(this.ctx, txn, HookId.HttpSendResponseHdr);
    if (!r.ok) {
      upRes.destroy();
      txn.clientResp = null;
      return this.#sendReply(txn, res, pluginErrorReply(txn.errorStatus, r.error));
    }
    if (res.destroyed) {
      upRes.destroy();
      return;
    }
    res.writeHead(out.status, out.reason, out.raw());
    upRes.pipe(res);
    upRes.once('error', () => res.destroy());
  }

  /** SEND_RESPONSE_HDR for a reply the host made, then write it. */
  async #sendReply(txn: Transaction, res: ServerResponse, reply: Reply): Promise<void> {
    txn.clientResp = reply.hdr;
    const r = await txnHook(this.ctx, txn, HookId.HttpSendResponseHdr);
    writeResReply(res, r.ok ? { hdr: txn.clientResp, body: reply.body } : reply);
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    this.ctx.stats.inc('http.client_error');
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const f: Failure =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? failure('http_request_error', 431, 'Request Header Fields Too Large', `request header exceeds proxy.config.http.request_header_max_size`)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? failure('http_request_error', 408, 'Request Timeout', 'request header not received in time')
          : failure('http_request_error', 400, 'Bad Request', err.code ?? 'malformed request');
    if (dbg.on) dbg('client error: %s', err.code ?? err.message);
    const r = failureReply(f);
    writeRawReply(socket, r);
  }
}

/** ip_allow `in` rules per method. */
export function checkMethod(ctx: HostContext, txn: Transaction): Reply | null {
  const d = ctx.config.ipAllow.checkIn(txn.clientAddr.address, txn.clientReq.method);
  if (d.allow) return null;
  ctx.stats.inc('ip_allow.denied_in');
  return failureReply(failure('http_request_denied', 403, 'Access Denied', `method ${txn.clientReq.method} denied by ip_allow (${d.by})`));
}

function isTlsSocket(s: Duplex): boolean {
  return (s as { encrypted?: boolean }).encrypted === true;
}

function portOf(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/**
 * The request as it goes upstream: origin-form target, the hooks' header, no hop-by-hop fields.
 * `authority` (remapped or absolute-form, RFC 9112 3.2.2; ATS pristine_host_hdr 0) replaces Host.
 */
function applyRequestHeader(req: IncomingMessage, hdr: Hdr, path: string, authority: string | null): void {
  const out: Record<string, string | string[]> = {};
  const connTokens = (hdr.get('connection') ?? '').toLowerCase().split(',').map((t) => t.trim());
  for (const name of hdr.names()) {
    const n = name.toLowerCase();
    if (HOP_BY_HOP.includes(n) || connTokens.includes(n)) continue;
    const all = hdr.getAll(name);
    out[n] = all.length === 1 ? all[0]! : all;
  }
  if (authority !== null) out['host'] = authority;
  req.headers = out as IncomingMessage['headers'];
  req.url = path;
}

