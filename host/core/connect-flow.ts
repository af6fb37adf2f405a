/**
 * CONNECT: validate the target, run the hook points, then either join the client to a plugin's
 * Intercept (whose reply is parsed as the origin's), or dial the target (TCP, or TLS for
 * `CONNECT https://host:port`) and answer 200 only once that connection is up. Bytes the client
 * sent after its CONNECT header are tunnel data, never parsed.
 */
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HookId } from '../api/events.js';
import { connectPortAllowed } from '../config/ports.js';
import { diags } from '../diags.js';
import { failure } from '../net/proxy-status.js';
import { createTunnel } from '../net/tunnel.js';
import { createVConnPair } from '../net/vconn-pair.js';
import type { HostContext } from './context.js';
import { Hdr } from './http-hdr.js';
import { txnHook } from './hook-points.js';
import { checkMethod } from './http-sm.js';
import { failureReply, pluginErrorReply, responseHdr, writeRawReply } from './reply.js';
import type { Reply } from './reply.js';
import { HOP_BY_HOP } from './txn.js';
import type { Transaction } from './txn.js';
import { dialUpstream, isOk, remapConnect } from './upstream.js';

const dbg = diags.dbgCtl('http_tunnel');
const noop = (): void => undefined;

export interface ConnectTarget {
  readonly host: string;
  readonly port: number;
  /** `CONNECT https://host:port`: open TLS to the target with proxy.config.ssl.client.*. */
  readonly tls: boolean;
}

const AUTHORITY = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/;

/** Authority-form `host:port` (RFC 9110 9.3.6), or `https://host:port[/]`; null if invalid. */
export function parseConnectTarget(target: string): ConnectTarget | null {
  let rest = target;
  let tls = false;
  if (/^https:\/\//i.test(rest)) {
    tls = true;
    rest = rest.slice(8).replace(/\/$/, '');
  }
  const m = AUTHORITY.exec(rest);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  const host = (m[1] ?? m[2])!;
  if (m[2] !== undefined && (host.startsWith('.') || host.startsWith('-') || host.includes('..'))) return null;
  return { host, port, tls };
}

export async function connectFlow(ctx: HostContext, txn: Transaction, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', noop);
  let closed = false;
  const closeTxn = (): void => {
    if (closed) return;
    closed = true;
    void txnHook(ctx, txn, HookId.HttpTxnClose);
  };
  const reply = async (r: Reply): Promise<void> => {
    txn.clientResp = r.hdr;
    const h = await txnHook(ctx, txn, HookId.HttpSendResponseHdr);
    writeRawReply(socket, h.ok ? { hdr: txn.clientResp, body: r.body } : r);
    if (dbg.on) dbg('transaction %d: CONNECT %s -> %d %s', txn.id, txn.clientReq.url, txn.clientResp.status, txn.clientResp.reason);
    closeTxn();
  };
  const rec = ctx.config.records;

  let r = await txnHook(ctx, txn, HookId.HttpTxnStart);
  if (!r.ok) return reply(pluginErrorReply(txn.errorStatus, r.error));
  const target = parseConnectTarget(txn.clientReq.url);
  if (!target) return reply(failureReply(failure('http_request_error', 400, 'Bad Request', 'CONNECT target must be host:port')));
  if (txn.clientReq.get('content-length') !== undefined || txn.clientReq.get('transfer-encoding') !== undefined) {
    return reply(failureReply(failure('http_request_error', 400, 'Bad Request', 'CONNECT must not carry a body')));
  }
  r = await txnHook(ctx, txn, HookId.HttpReadRequestHdr);
  if (!r.ok) return reply(pluginErrorReply(txn.errorStatus, r.error));
  if (!connectPortAllowed(rec.connectPorts, target.port)) {
    ctx.stats.inc('connect.port_forbidden');
    return reply(failureReply(failure('http_request_denied', 403, 'Tunnel Forbidden', `port ${target.port} is not in proxy.config.http.connect_ports`)));
  }
  const denied = checkMethod(ctx, txn);
  if (denied) return reply(denied);
  r = await txnHook(ctx, txn, HookId.HttpPreRemap);
  if (!r.ok) return reply(pluginErrorReply(txn.errorStatus, r.error));
  const dest = remapConnect(ctx, txn, target.host, target.port, txn.session.localPort);
  if ('hdr' in dest) return reply(dest);
  r = await txnHook(ctx, txn, HookId.HttpPostRemap);
  if (!r.ok) return reply(pluginErrorReply(txn.errorStatus, r.error));

  if (txn.interceptHandler) return interceptedConnect(ctx, txn, socket, head, reply, closeTxn);

  const up = await dialUpstream(ctx, { host: dest.host, port: dest.port, tls: target.tls, method: 'CONNECT', prewarmed: txn.isInternal });
  if (!isOk(up)) return reply(failureReply(up));
  if (socket.destroyed) {
    up.socket.destroy();
    return closeTxn();
  }
  r = await txnHook(ctx, txn, HookId.HttpOsDns);
  if (!r.ok) {
    up.socket.destroy();
    return reply(pluginErrorReply(txn.errorStatus, r.error));
  }
  txn.clientResp = responseHdr(200, 'OK');
  r = await txnHook(ctx, txn, HookId.HttpSendResponseHdr);
  const resp = txn.clientResp;
  if (!r.ok || resp.status < 200 || resp.status > 299) {
    up.socket.destroy();
    writeRawReply(socket, r.ok ? { hdr: resp, body: Buffer.alloc(0) } : pluginErrorReply(txn.errorStatus, r.error));
    return closeTxn();
  }
  ctx.stats.inc('connect.tunnels');
  if (dbg.on) dbg('transaction %d: tunnel to %s:%d (%s)%s', txn.id, dest.host, dest.port, up.address, target.tls ? ' over TLS' : '');
  socket.write(resp.serializeResponse(), 'latin1');
  createTunnel(socket, up.socket, {
    headToB: head.length ? head : undefined,
    idleTimeoutMs: ctx.config.records.noActivityTimeoutIn * 1000,
    onClose: (s) => {
      if (dbg.on) dbg('transaction %d: tunnel closed (%s), %d bytes up, %d down', txn.id, s.reason, s.aToB, s.bToA);
      closeTxn();
    },
  });
}

/** The plugin is the origin: send it the client's CONNECT, parse its reply, then tunnel to it. */
function interceptedConnect(
  ctx: HostContext,
  txn: Transaction,
  socket: Duplex,
  head: Buffer,
  reply: (r: Reply) => Promise<void>,
  closeTxn: () => void,
): void {
  const [hostEnd, pluginEnd] = createVConnPair();
  const handler = txn.interceptHandler!;
  queueMicrotask(() => {
    try {
      handler(pluginEnd);
    } catch (err) {
      diags.error('[PXY_ERR_HOOK_THREW] plugin %s threw in its intercept: %s', txn.interceptPlugin, (err as Error)?.message);
      pluginEnd.destroy();
    }
  });
  const fwd = txn.clientReq.copy();
  for (const h of HOP_BY_HOP) fwd.delete(h);
  const creq = http.request({ method: 'CONNECT', path: txn.clientReq.url, setHost: false, headers: fwd.raw(), createConnection: () => hostEnd });
  const fail = (detail: string): void => {
    hostEnd.destroy();
    const set = txn.errorStatus;
    void reply(failureReply(failure('connection_terminated', set?.status ?? 502, set?.reason ?? 'Bad Gateway', detail)));
  };
  creq.once('error', (err) => fail(`intercepting plugin '${txn.interceptPlugin}' closed before a reply (${(err as NodeJS.ErrnoException).code ?? err.message})`));
  // Until the plugin answers, a client that leaves takes the request with it.
  const abandon = (): void => {
    if (!creq.destroyed) creq.destroy();
  };
  creq.once('connect', (res: IncomingMessage, up: Duplex, upHead: Buffer) => {
    // From here the reply's socket is ours; nothing keeps the request (and its parser) alive.
    socket.off('close', abandon);
    creq.removeAllListeners('error');
    creq.on('error', noop);
    void onPluginReply(ctx, txn, socket, head, res, up, upHead, closeTxn).catch((err: unknown) => {
      diags.error('transaction %d: %s', txn.id, (err as Error)?.stack ?? String(err));
      up.destroy();
      socket.destroy();
      closeTxn();
    });
  });
  socket.once('close', abandon);
  creq.end();
}

async function onPluginReply(
  ctx: HostContext,
  txn: Transaction,
  socket: Duplex,
  head: Buffer,
  res: IncomingMessage,
  up: Duplex,
  upHead: Buffer,
  closeTxn: () => void,
): Promise<void> {
  up.on('error', noop);
  txn.serverResp = new Hdr({ status: res.statusCode ?? 502, reason: res.statusMessage ?? '', version: res.httpVersion, raw: res.rawHeaders });
  let r = await txnHook(ctx, txn, HookId.HttpReadResponseHdr);
  if (r.ok) {
    const out = txn.serverResp.copy();
    for (const h of ['connection', 'keep-alive', 'proxy-connection']) out.delete(h);
    txn.clientResp = out;
    r = await txnHook(ctx, txn, HookId.HttpSendResponseHdr);
  }
  if (!r.ok) {
    up.destroy();
    writeRawReply(socket, pluginErrorReply(txn.errorStatus, r.error));
    return closeTxn();
  }
  const out = txn.clientResp!;
  if (socket.destroyed) {
    up.destroy();
    return closeTxn();
  }
  socket.write(out.serializeResponse(), 'latin1');
  if (out.status >= 200 && out.status <= 299) {
    // When the plugin tunnelled its side of the intercept (tls_bridge), this joins that tunnel:
    // one relay from the client to the plugin's outbound leg.
    createTunnel(socket, up, {
      headToA: upHead.length ? upHead : undefined,
      headToB: head.length ? head : undefined,
      idleTimeoutMs: ctx.config.records.noActivityTimeoutIn * 1000,
      onClose: () => closeTxn(),
      joinVConns: true,
    });
    return;
  }
  // A refusal: relay its body (Content-Length bytes, or until the plugin ends), then close.
  const cl = res.headers['content-length'];
  relayBody(up, socket, upHead, cl !== undefined ? Number(cl) : Infinity, closeTxn);
}

function relayBody(from: Duplex, to: Duplex, first: Buffer, length: number, done: () => void): void {
  let left = length;
  const finish = (): void => {
    from.destroy();
    to.end();
    done();
  };
  const push = (b: Buffer): void => {
    if (left <= 0) return;
    const part = b.length > left ? b.subarray(0, left) : b;
    left -= part.length;
    to.write(part);
    if (left <= 0) finish();
  };
  if (first.length) push(first);
  if (left <= 0) return;
  from.on('data', push);
  from.once('end', finish);
  from.once('close', finish);
}
