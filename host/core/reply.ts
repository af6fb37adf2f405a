/**
 * Client replies: a Failure (or a plugin's status) becomes a response header that still passes
 * SEND_RESPONSE_HDR, and a short body whose length matches Content-Length.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyError } from '../api/errors.js';
import { failure, proxyStatusHeader } from '../net/proxy-status.js';
import type { Failure } from '../net/proxy-status.js';
import { Hdr } from './http-hdr.js';

const SERVER_NAME = 'tsproxy';

/** A response header with the fields every reply carries. */
export function responseHdr(status: number, reason: string): Hdr {
  const h = new Hdr({ status, reason });
  h.set('Date', new Date().toUTCString());
  h.set('Server', SERVER_NAME);
  return h;
}

export interface Reply {
  readonly hdr: Hdr;
  readonly body: Buffer;
}

/** The error reply for a classified failure. */
export function failureReply(f: Failure): Reply {
  const body = Buffer.from(`${f.status} ${f.reason}${f.detail ? `: ${f.detail}` : ''}\n`);
  const hdr = responseHdr(f.status, f.reason);
  hdr.set('Proxy-Status', proxyStatusHeader(f));
  hdr.set('Cache-Control', 'no-store');
  hdr.set('Content-Type', 'text/plain; charset=utf-8');
  hdr.set('Content-Length', String(body.length));
  hdr.set('Connection', 'close');
  return { hdr, body };
}

/**
 * A hook asked for an error (HttpError: `error` null) or misused the API (`error` names it):
 * `500 INKApi Error` unless the plugin set a status with `txn.statusSet`.
 */
export function pluginErrorReply(set: { status: number; reason: string | undefined } | null, error: ProxyError | null): Reply {
  const status = set && set.status >= 400 ? set.status : 500;
  const reason = set?.reason ?? (status === 500 ? 'INKApi Error' : 'Plugin Error');
  return failureReply(failure('proxy_internal_error', status, reason, error?.code ?? 'HttpError'));
}

/** Write a reply on a raw connection (CONNECT path), then close our side. */
export function writeRawReply(socket: Duplex, r: Reply): void {
  if (socket.destroyed) return;
  socket.end(Buffer.concat([Buffer.from(r.hdr.serializeResponse(), 'latin1'), r.body]));
}

/** Write a reply through Node's ServerResponse (request path). */
export function writeResReply(res: ServerResponse, r: Reply): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.shouldKeepAlive = false;
  res.writeHead(r.hdr.status, r.hdr.reason, r.hdr.raw());
  res.end(r.body);
}
