/**
 * Dial a Route: TCP, optional TLS (one shared SecureContext per process), optional CONNECT.
 * Every socket gets TCP_NODELAY. Times are milliseconds from the start of the dial.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import type { Route, TlsHop } from './wire.js';

const MAX_REPLY_HEAD = 16 * 1024;

export interface Dialed {
  readonly socket: Socket;
  /** Bytes that arrived after the CONNECT reply head (normally none). Socket is paused. */
  readonly extra: Buffer;
  /** ms from dial start until the first hop was up (TCP connected, or TLS secured). */
  readonly upMs: number;
  /** ms from dial start until the CONNECT reply head arrived, or null without CONNECT. */
  readonly replyMs: number | null;
}

/** One SecureContext for all of a client's TLS connections (a context per connection costs CPU). */
export function secureContextFor(hop: TlsHop): SecureContext {
  return createSecureContext({
    ca: readFileSync(hop.ca),
    ...(hop.cert !== null && hop.key !== null ? { cert: readFileSync(hop.cert), key: readFileSync(hop.key) } : {}),
  });
}

function firstHop(route: Route, ctx: SecureContext | null, servername: string | null): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    if (route.tls === null || ctx === null) {
      const s = netConnect({ host: route.host, port: route.port, noDelay: true }, () => {
        s.off('error', onError);
        resolve(s);
      });
      s.once('error', onError);
      return;
    }
    const s = tlsConnect(
      { host: route.host, port: route.port, servername: servername ?? route.tls.servername, secureContext: ctx },
      () => {
        s.off('error', onError);
        s.setNoDelay(true);
        resolve(s);
      },
    );
    s.once('error', onError);
  });
}

/** Read an HTTP reply head; resolve with its status code and any bytes after it. Pauses the socket. */
export function readReplyHead(socket: Socket): Promise<{ status: number; extra: Buffer }> {
  return new Promise((resolve, reject) => {
    let acc: Buffer = Buffer.alloc(0);
    const done = (err: Error | null, status = 0, extra: Buffer = Buffer.alloc(0)): void => {
      socket.off('data', onData);
      socket.off('error', onErr);
      socket.off('close', onClose);
      socket.pause();
      if (err !== null) reject(err);
      else resolve({ status, extra });
    };
    const onData = (d: Buffer): void => {
      acc = acc.length === 0 ? d : Buffer.concat([acc, d]);
      const end = acc.indexOf('\r\n\r\n');
      if (end < 0) {
        if (acc.length > MAX_REPLY_HEAD) done(new Error('CONNECT reply head too large'));
        return;
      }
      const line = acc.subarray(0, acc.indexOf('\r\n')).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(line);
      if (m === null) done(new Error(`bad CONNECT reply: ${JSON.stringify(line)}`));
      else done(null, Number(m[1]), acc.subarray(end + 4));
    };
    const onErr = (err: Error): void => done(err);
    const onClose = (): void => done(new Error('closed before the CONNECT reply'));
    socket.on('data', onData);
    socket.once('error', onErr);
    socket.once('close', onClose);
  });
}

/** Dial the route. With `servername`, override the route's TLS SNI. Rejects on a non-2xx reply. */
export async function dial(route: Route, ctx: SecureContext | null, servername: string | null = null): Promise<Dialed> {
  const t0 = performance.now();
  const socket = await firstHop(route, ctx, servername);
  const upMs = performance.now() - t0;
  if (route.connect === null) {
    socket.pause();
    return { socket, extra: Buffer.alloc(0), upMs, replyMs: null };
  }
  socket.write(`CONNECT ${route.connect} HTTP/1.1\r\nHost: ${route.connect}\r\n\r\n`);
  try {
    const { status, extra } = await readReplyHead(socket);
    if (status < 200 || status > 299) throw new Error(`CONNECT ${route.connect} answered ${status}`);
    return { socket, extra, upMs, replyMs: performance.now() - t0 };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/** Reject after `ms` unless `p` settles first. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Write one byte and wait for one byte back (an echo proves the tunnel end to end). */
export function echoByte(d: Dialed): Promise<void> {
  return new Promise((resolve, reject) => {
    if (d.extra.length > 0) {
      reject(new Error('unexpected bytes before the echo'));
      return;
    }
    const s = d.socket;
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('error', onErr);
      s.off('close', onClose);
    };
    const onData = (): void => {
      cleanup();
      s.pause();
      resolve();
    };
    const onErr = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('closed before the echo'));
    };
    s.on('data', onData);
    s.once('error', onErr);
    s.once('close', onClose);
    s.resume();
    s.write('x');
  });
}
