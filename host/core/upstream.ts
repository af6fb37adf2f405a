/** Where a transaction goes: remap, then a checked, timed outbound connection. */
import type { Duplex } from 'node:stream';
import type { RemapRequest } from '../config/types.js';
import { dial } from '../net/dial.js';
import { classify, failure, isFailure } from '../net/proxy-status.js';
import type { Failure } from '../net/proxy-status.js';
import type { HostContext } from './context.js';
import { failureReply, responseHdr } from './reply.js';
import type { Reply } from './reply.js';
import type { Transaction } from './txn.js';

export type Route = { readonly reply: Reply } | { readonly target: URL | null; readonly path: string };

const NOT_FOUND = (): Reply => failureReply(failure('destination_not_found', 404, 'Not Found on Accelerator', 'no remap rule matched'));

function defaultPort(scheme: string): number {
  return scheme === 'https' ? 443 : 80;
}

/** Split `host[:port]` (IPv6 in brackets). */
function splitHostPort(s: string): { host: string; port: number | null } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]*)(?::(\d+))?$/.exec(s);
  if (!m) return { host: s, port: null };
  return { host: m[1]!, port: m[2] ? Number(m[2]) : null };
}

/** Remap for a request (absolute-URI or origin form), per ATS: rules first, then remap_required. */
export function remapFor(ctx: HostContext, txn: Transaction, recvPort: number, tls: boolean): Route {
  const url = txn.clientReq.url;
  let abs: URL | null = null;
  if (/^https?:\/\//i.test(url)) {
    try {
      abs = new URL(url);
    } catch {
      return { reply: failureReply(failure('http_request_error', 400, 'Bad Request', 'invalid request URL')) };
    }
  }
  const scheme = abs ? abs.protocol.slice(0, -1) : tls ? 'https' : 'http';
  const hp = abs ? { host: abs.hostname.replace(/^\[|\]$/g, ''), port: abs.port ? Number(abs.port) : null } : splitHostPort(txn.clientReq.get('host') ?? '');
  const path = abs ? abs.pathname + abs.search : url;
  if (txn.skipRemap) return { target: abs, path };
  const req: RemapRequest = {
    scheme: scheme as RemapRequest['scheme'],
    host: hp.host.toLowerCase(),
    port: hp.port ?? defaultPort(scheme),
    path,
    recvPort,
    method: txn.clientReq.method,
  };
  const m = ctx.config.remap.lookup(req);
  if (m?.kind === 'redirect') {
    const hdr = responseHdr(m.status, m.status === 301 ? 'Moved Permanently' : 'Temporary Redirect');
    hdr.set('Location', m.location);
    hdr.set('Content-Length', '0');
    return { reply: { hdr, body: Buffer.alloc(0) } };
  }
  if (m?.kind === 'map') return { target: m.target, path: m.target.pathname + m.target.search };
  if (abs && !ctx.config.records.remapRequired) return { target: abs, path };
  return { reply: NOT_FOUND() };
}

/** The CONNECT form of remap: a rule for `https://host:port` may move the tunnel; else remap_required decides. */
export function remapConnect(ctx: HostContext, txn: Transaction, host: string, port: number, recvPort: number): { host: string; port: number } | Reply {
  if (txn.skipRemap) return { host, port };
  const m = ctx.config.remap.lookup({ scheme: 'https', host: host.toLowerCase(), port, path: '/', recvPort, method: 'CONNECT' });
  if (m?.kind === 'map') return { host: m.target.hostname.replace(/^\[|\]$/g, ''), port: m.target.port ? Number(m.target.port) : port };
  if (!ctx.config.records.remapRequired) return { host, port };
  return NOT_FOUND();
}

export interface Upstream {
  readonly socket: Duplex;
  readonly address: string;
}

export function isOk(x: Upstream | Failure): x is Upstream {
  return 'socket' in x;
}

export interface UpstreamOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly method: string;
  readonly alpn?: readonly string[];
  /** Take a pre-warmed connection when the pool has one (plugins' internal `CONNECT https://`). */
  readonly prewarmed?: boolean;
}

/**
 * Resolve (hosts file, then DNS), apply ip_allow `out`, connect (and TLS), refuse a loop to
 * ourselves; or, with `prewarmed`, hand over a pool connection that went through all of that.
 */
export async function dialUpstream(ctx: HostContext, o: UpstreamOptions): Promise<Upstream | Failure> {
  if (o.prewarmed === true && o.tls && ctx.prewarm !== null) {
    const warm = ctx.prewarm.take(o.host, o.port);
    ctx.stats.inc(warm === null ? 'prewarm.miss' : 'prewarm.hit');
    if (warm !== null) return warm;
  }
  const rec = ctx.config.records;
  let up: Upstream;
  try {
    up = await dial({
      host: o.host,
      port: o.port,
      tls: o.tls,
      timeoutMs: rec.connectAttemptsTimeout * 1000,
      handshakeTimeoutMs: rec.connectAttemptsTimeout * 1000,
      hosts: ctx.config.hosts,
      checkOut: (ip: string) => ctx.config.ipAllow.checkOut(ip, o.method),
      tlsClient: ctx.clientTls,
      awaitClientCertVerdict: o.method === 'CONNECT',
      ...(o.alpn && o.alpn.length > 0 ? { alpn: o.alpn } : {}),
    });
  } catch (err) {
    const f = isFailure(err) ? err : classify(err, 'connect');
    ctx.stats.inc(`upstream.${f.type}`);
    return f;
  }
  const s = up.socket as Duplex & { remoteAddress?: string; remotePort?: number };
  if (isSelf(ctx, s.remoteAddress ?? up.address, s.remotePort ?? o.port)) {
    up.socket.destroy();
    ctx.stats.inc('upstream.cycle');
    return failure('proxy_loop_detected', 400, 'Cycle Detected', `${o.host}:${o.port} is this proxy`);
  }
  return up;
}

function isSelf(ctx: HostContext, address: string, port: number): boolean {
  const a = address.replace(/^::ffff:/, '');
  return ctx.listening.some((l) => l.port === port && (l.address === a || l.address === '0.0.0.0' || l.address === '::'));
}
