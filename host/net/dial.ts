/**
 * Outbound connections. `dial` resolves (hosts file, then the system resolver), checks every
 * address against ip_allow `out` rules before any packet is sent, connects with a timeout,
 * trying the next address when one refuses, and for TLS verifies the peer per
 * `proxy.config.ssl.client.verify.server.policy` / `.properties` with the generation's one
 * client context. Every failure is a `Failure` value (proxy-status.ts), never a raw error.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { HostsTable } from '../config/types.js';
import { diags } from '../diags.js';
import { classify, failure, failureOf, isFailure, type Failure } from './proxy-status.js';
import type { ClientTlsContext } from './tls-context.js';
import { TlsSessionCache } from './tls-sessions.js';

const dbgDns = diags.dbgCtl('dns');
const dbgNet = diags.dbgCtl('net');
const dbgSsl = diags.dbgCtl('ssl');

export interface DialOptions {
  /** Name or IP literal; IPv6 may be bracketed. */
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** SNI and the name verified against the certificate; default `host` (never sent for an IP literal). */
  readonly servername?: string;
  /** Limit for the DNS lookup and for each connect attempt, ms. */
  readonly timeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly hosts: HostsTable;
  /** ip_allow `out` check, applied to every resolved address before connecting. */
  readonly checkOut: (ip: string) => { allow: boolean; by: string };
  /** The generation's client context; default: system roots, ENFORCED, ALL. */
  readonly tlsClient?: ClientTlsContext;
  /** ALPN protocols to offer. */
  readonly alpn?: readonly string[];
  /**
   * For a server that never speaks first (a peer proxy behind `CONNECT https://`): with TLS 1.3
   * and a client certificate, resolve only once the server accepted it (its session ticket), so a
   * refusal fails the dial instead of a tunnel already answered 200.
   */
  readonly awaitClientCertVerdict?: boolean;
  readonly signal?: AbortSignal;
}

export interface Dialed {
  readonly socket: net.Socket | tls.TLSSocket;
  /** The IP address connected to. */
  readonly address: string;
}

let defaultClient: ClientTlsContext | null = null;

function defaultClientContext(): ClientTlsContext {
  defaultClient ??= { secureContext: tls.createSecureContext(), policy: 'ENFORCED', properties: 'ALL', sessions: null };
  return defaultClient;
}

function abortedFailure(): Failure {
  return failure('proxy_internal_error', 500, 'Request Aborted', 'dial aborted');
}

/** An error on a socket nobody else listens to (a failed attempt, the TCP socket under TLS). */
function lateError(this: net.Socket, err: Error): void {
  if (dbgNet.on) dbgNet('outbound %s:%s: %s', this.remoteAddress, this.remotePort, err.message);
}

/**
 * Hand a connected socket to the caller: an error emitted before the caller attaches its own
 * 'error' listener (a TLS 1.3 alert can follow the handshake at once) is kept and given to that
 * listener when it is added, instead of being lost or crashing the process.
 */
export function handOff(sock: Duplex): void {
  let early: Error | null = null;
  const hold = (err: Error): void => {
    early ??= err;
  };
  const onNew = (event: string | symbol, fn: unknown): void => {
    if (event !== 'error' || fn === hold || typeof fn !== 'function') return;
    sock.removeListener('newListener', onNew);
    process.nextTick(() => {
      sock.removeListener('error', hold);
      if (early !== null) fn.call(sock, early);
    });
  };
  sock.on('error', hold);
  sock.on('newListener', onNew);
}

/**
 * One phase with a deadline and the abort signal. `start` begins the work and returns a cleanup
 * called once when the phase settles (`failed` says whether to discard what it made).
 */
function step<T>(
  ms: number,
  onTimeout: () => Failure,
  signal: AbortSignal | undefined,
  start: (ok: (v: T) => void, fail: (f: Failure) => void) => (failed: boolean) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let outcome: 'pending' | 'ok' | 'failed' = 'pending';
    let cleanup: ((failed: boolean) => void) | null = null;
    const settle = (failed: boolean): void => {
      outcome = failed ? 'failed' : 'ok';
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cleanup?.(failed);
    };
    const ok = (v: T): void => {
      if (outcome !== 'pending') return;
      settle(false);
      resolve(v);
    };
    const fail = (f: Failure): void => {
      if (outcome !== 'pending') return;
      settle(true);
      reject(f);
    };
    const onAbort = (): void => fail(abortedFailure());
    const timer = setTimeout(() => fail(onTimeout()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    cleanup = start(ok, fail);
    if (outcome !== 'pending') cleanup(outcome === 'failed');
  });
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** IP literal, hosts file, then dns.lookup (all addresses) under the timeout. */
async function resolve(host: string, o: DialOptions): Promise<string[]> {
  if (net.isIP(host) !== 0) return [host];
  const fromFile = o.hosts.lookup(host);
  if (fromFile.length > 0) {
    if (dbgDns.on) dbgDns('%s from the hosts file: %s', host, fromFile.join(', '));
    return [...fromFile];
  }
  const addrs = await step<string[]>(
    o.timeoutMs,
    () => failureOf('dns_timeout', `${host}: no answer within ${o.timeoutMs} ms`),
    o.signal,
    (ok, fail) => {
      dns.lookup(host, { all: true }, (err, found) => {
        if (err !== null) fail(classify(err, 'dns'));
        else if (found.length === 0) fail(failureOf('dns_error', `${host}: no address`));
        else ok(found.map((a) => a.address));
      });
      return () => {};
    },
  );
  if (dbgDns.on) dbgDns('%s resolved: %s', host, addrs.join(', '));
  return addrs;
}

function connectTcp(ip: string, port: number, o: DialOptions): Promise<net.Socket> {
  return step<net.Socket>(
    o.timeoutMs,
    () => failureOf('connection_timeout', `${ip} port ${port}: no answer within ${o.timeoutMs} ms`),
    o.signal,
    (ok, fail) => {
      const sock = net.connect({ host: ip, port, noDelay: true });
      const onError = (err: Error): void => fail(classify(err, 'connect'));
      const onConnect = (): void => ok(sock);
      sock.on('error', onError);
      sock.once('connect', onConnect);
      return (failed) => {
        sock.removeListener('error', onError);
        sock.removeListener('connect', onConnect);
        if (failed) {
          sock.on('error', lateError);
          sock.destroy();
        } else if (o.tls) sock.on('error', lateError);
        else handOff(sock);
      };
    },
  );
}

/** The Error for a chain that did not verify (Node keeps only the code in authorizationError). */
function chainError(sock: tls.TLSSocket): Error {
  const ae: unknown = sock.authorizationError;
  const code = typeof ae === 'string' ? ae : ae instanceof Error ? ae.message : 'CERT_UNTRUSTED';
  return Object.assign(new Error(`certificate verify failed: ${code}`), { code });
}

/** How long to wait for a TLS 1.3 server's verdict on our certificate when it sends no session ticket. */
const CLIENT_CERT_VERDICT_MS = 250;

function handshake(raw: net.Socket, host: string, o: DialOptions): Promise<tls.TLSSocket> {
  const ctx = o.tlsClient ?? defaultClientContext();
  const name = unbracket(o.servername ?? host);
  const verify = ctx.policy !== 'DISABLED' && ctx.properties !== 'NONE';
  const chain = ctx.properties === 'ALL' || ctx.properties === 'SIGNATURE';
  const byName = ctx.properties === 'ALL' || ctx.properties === 'NAME';
  // ENFORCED with a chain check: Node rejects during the handshake. Everything else is checked here.
  const native = verify && ctx.policy === 'ENFORCED' && chain;
  const sessionKey = ctx.sessions === null ? '' : TlsSessionCache.key(name, raw.remoteAddress ?? '', o.port);
  const session = ctx.sessions?.get(sessionKey);
  return step<tls.TLSSocket>(
    o.handshakeTimeoutMs,
    () => failure('connection_timeout', 504, 'TLS Handshake Timeout', `${name}: no TLS handshake within ${o.handshakeTimeoutMs} ms`),
    o.signal,
    (ok, fail) => {
      const sock = tls.connect({
        socket: raw,
        secureContext: ctx.secureContext,
        ...(net.isIP(name) === 0 ? { servername: name } : {}),
        ...(o.alpn !== undefined ? { ALPNProtocols: [...o.alpn] } : {}),
        ...(session !== undefined ? { session } : {}),
        rejectUnauthorized: native,
        checkServerIdentity: native && byName ? (_h, cert) => tls.checkServerIdentity(name, cert) : () => undefined,
      });
      const onSecure = (): void => {
        if (verify && !native) {
          const problems: Error[] = [];
          if (chain && !sock.authorized) problems.push(chainError(sock));
          const nameErr = byName ? tls.checkServerIdentity(name, sock.getPeerCertificate()) : undefined;
          if (nameErr !== undefined) problems.push(nameErr);
          const first = problems[0];
          if (first !== undefined) {
            if (ctx.policy === 'ENFORCED') {
              fail(classify(first, 'tls'));
              return;
            }
            diags.note('server certificate verification failed for %s (%s:%d), continuing (PERMISSIVE): %s', name, raw.remoteAddress, o.port, problems.map((p) => p.message).join('; '));
          }
        }
        accept();
        if (dbgSsl.on) {
          const how = sock.isSessionReused() ? 'resumed' : 'full handshake';
          dbgSsl('TLS to %s (%s:%d): %s, %s, %s', name, raw.remoteAddress, o.port, sock.getProtocol(), how, sock.authorized ? 'verified' : 'not verified');
        }
        // A resumed session carries no client certificate to judge: the server accepted it before.
        if (o.awaitClientCertVerdict !== true || sock.getProtocol() !== 'TLSv1.3' || sock.isSessionReused()) {
          ok(sock);
          return;
        }
        // TLS 1.3: the server judges our certificate (or its absence) after its Finished. A refusal
        // arrives as an alert (error/close, still failing this dial); acceptance shows as its session ticket.
        const confirm = (): void => {
          clearTimeout(timer);
          sock.removeListener('session', confirm);
          // Not from inside OpenSSL's new-session callback: writes made there are lost.
          setImmediate(() => ok(sock));
        };
        awaitingVerdict = true;
        const timer = setTimeout(confirm, CLIENT_CERT_VERDICT_MS);
        sock.once('session', confirm);
        sock.read(0);
      };
      const onError = (err: Error): void => fail(classify(err, 'tls'));
      // Tickets come for as long as the connection lives; one is kept only once the origin passed
      // verification (a TLS 1.2 server sends its ticket before the handshake is done).
      const sessions = ctx.sessions;
      let verified = false;
      let early: Buffer | null = null;
      if (sessions !== null) {
        sock.on('session', (ticket: Buffer) => {
          if (verified) sessions.put(sessionKey, ticket);
          else early = ticket;
        });
      }
      const accept = (): void => {
        verified = true;
        if (early !== null) sessions?.put(sessionKey, early);
      };
      let awaitingVerdict = false;
      const onClose = (): void =>
        fail(
          awaitingVerdict
            ? failureOf('tls_protocol_error', `${name}: closed right after the TLS handshake: it refused our client certificate (or its absence)`)
            : failureOf('connection_terminated', `${name}: closed during the TLS handshake`),
        );
      sock.once('secureConnect', onSecure);
      sock.on('error', onError);
      sock.once('close', onClose);
      return (failed) => {
        sock.removeListener('secureConnect', onSecure);
        sock.removeListener('error', onError);
        sock.removeListener('close', onClose);
        if (failed) {
          sock.on('error', lateError);
          sock.destroy();
          raw.destroy();
        } else handOff(sock);
      };
    },
  );
}

/**
 * Open a connection to `o.host`:`o.port`. Resolves with the socket (TLS when `o.tls`) and the
 * address used; rejects with a Failure: dns_error / dns_timeout, destination_ip_prohibited
 * (`403 Access Denied`, nothing dialled, when ip_allow denies ANY resolved address),
 * connection_refused, destination_ip_unroutable, connection_timeout (`Connect Timeout`, or `TLS
 * Handshake Timeout`), tls_certificate_error, tls_alert_received, tls_protocol_error.
 *
 * TLS verification: DISABLED or NONE verifies nothing; ALL checks chain and name, SIGNATURE the
 * chain, NAME the name only. ENFORCED fails the dial; PERMISSIVE logs a NOTE and continues.
 * With TLS 1.3 a server that rejects our client certificate says so after the handshake: when we
 * sent one, the dial waits for the server's session ticket (or its alert) before resolving. A
 * resumed session (the client context's ticket cache) sends no certificate, so it does not wait.
 */
export async function dial(o: DialOptions): Promise<Dialed> {
  const host = unbracket(o.host);
  try {
    if (o.signal?.aborted === true) throw abortedFailure();
    const addresses = await resolve(host, o);
    for (const ip of addresses) {
      const d = o.checkOut(ip);
      if (!d.allow) {
        if (dbgNet.on) dbgNet('%s (%s) denied by %s', host, ip, d.by);
        throw failureOf('destination_ip_prohibited', `${host === ip ? ip : `${host} (${ip})`} denied by ip_allow ${d.by.replace(/^.*\//, '')}`);
      }
    }
    let last: Failure | null = null;
    for (const ip of addresses) {
      let raw: net.Socket;
      try {
        raw = await connectTcp(ip, o.port, o);
      } catch (f) {
        last = isFailure(f) ? f : classify(f, 'connect');
        if (dbgNet.on) dbgNet('connect %s port %d: %s', ip, o.port, last.detail ?? last.reason);
        if (last.type === 'connection_refused' || last.type === 'destination_ip_unroutable') continue;
        throw last;
      }
      if (dbgNet.on) dbgNet('connected to %s port %d', ip, o.port);
      return { socket: o.tls ? await handshake(raw, host, o) : raw, address: ip };
    }
    throw last ?? failureOf('dns_error', `${host}: no address`);
  } catch (e) {
    throw isFailure(e) ? e : classify(e, 'connect');
  }
}
