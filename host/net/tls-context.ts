/**
 * TLS contexts, built once per config generation (`tls.createSecureContext` costs about 1.4 ms of
 * CPU; never call it per connection).
 *
 * - Outbound: one client context from `proxy.config.ssl.client.*` plus the verify policy and
 *   properties `dial` applies.
 * - Inbound: one context per ssl_multicert.config line, selected by SNI against each certificate's
 *   CN and DNS SANs (exact, then `*.` wildcard), then by `dest_ip` (the local address), then `*`.
 *
 * Every problem is collected and thrown as one ProxyError (PXY_ERR_CONFIG_INVALID) whose message
 * has one line per problem, each naming the record or `file:line`. Key material is never logged.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { ErrorCode, ProxyError } from '../api/errors.js';
import type { RecordsConfig, SslCertEntry, VerifyServerPolicy, VerifyServerProperties } from '../config/types.js';
import { certInfo, readCaBundle } from './pem.js';
import { TlsSessionCache } from './tls-sessions.js';

/** The records whose files these contexts read, for messages. */
const RECORD = {
  clientCa: 'proxy.config.ssl.client.CA.cert.filename',
  clientCert: 'proxy.config.ssl.client.cert.filename',
  clientKey: 'proxy.config.ssl.client.private_key.filename',
  inboundCa: 'proxy.config.ssl.CA.cert.filename',
} as const;

/** What `dial` needs for outbound TLS. */
export interface ClientTlsContext {
  /** CA bundle (or system roots) and the client certificate, if any. */
  readonly secureContext: tls.SecureContext;
  readonly policy: VerifyServerPolicy;
  readonly properties: VerifyServerProperties;
  /** Session tickets of this context's origins, or null (proxy.config.ssl.origin_session_cache off). */
  readonly sessions: TlsSessionCache | null;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function fail(problems: string[]): never {
  throw new ProxyError(ErrorCode.CONFIG_INVALID, problems.join('\n'));
}

/** Read a certificate (chain) and its key, checking the leaf's validity dates. */
function readCertAndKey(certFile: string, keyFile: string, where: (f: string) => string, problems: string[]): { cert: string; key: string } | null {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certFile, 'latin1');
  } catch (e) {
    problems.push(`${where(certFile)}: cannot read certificate: ${message(e)}`);
    return null;
  }
  try {
    key = readFileSync(keyFile, 'latin1');
  } catch (e) {
    problems.push(`${where(keyFile)}: cannot read private key: ${message(e)}`);
    return null;
  }
  try {
    const info = certInfo(cert);
    const now = Date.now();
    if (info.validTo.getTime() < now) {
      problems.push(`${where(certFile)}: certificate expired on ${info.validTo.toISOString()}`);
      return null;
    }
    if (info.validFrom.getTime() > now) {
      problems.push(`${where(certFile)}: certificate not valid before ${info.validFrom.toISOString()}`);
      return null;
    }
  } catch (e) {
    problems.push(`${where(certFile)}: not a PEM certificate: ${message(e)}`);
    return null;
  }
  return { cert, key };
}

/**
 * The outbound context from `proxy.config.ssl.client.*`: `ca` from a file or every PEM file of a
 * directory (null: system roots), the client certificate and key (the key defaults to the
 * certificate file, as in ATS). Throws ProxyError PXY_ERR_CONFIG_INVALID naming the record and file.
 */
export function buildClientTlsContext(ssl: RecordsConfig['ssl']): ClientTlsContext {
  const problems: string[] = [];
  const opts: tls.SecureContextOptions = {};
  if (ssl.clientCa !== null) {
    try {
      opts.ca = readCaBundle(ssl.clientCa);
    } catch (e) {
      problems.push(`${RECORD.clientCa} ${ssl.clientCa}: ${message(e)}`);
    }
  }
  if (ssl.clientCert !== null) {
    const keyFile = ssl.clientKey ?? ssl.clientCert;
    const rec = (f: string): string => `${f === ssl.clientCert ? RECORD.clientCert : RECORD.clientKey} ${f}`;
    const pair = readCertAndKey(ssl.clientCert, keyFile, rec, problems);
    if (pair !== null) {
      opts.cert = pair.cert;
      opts.key = pair.key;
    }
  } else if (ssl.clientKey !== null) {
    problems.push(`${RECORD.clientKey} ${ssl.clientKey}: set without ${RECORD.clientCert}`);
  }
  if (problems.length > 0) fail(problems);
  try {
    return {
      secureContext: tls.createSecureContext(opts),
      policy: ssl.verifyServerPolicy,
      properties: ssl.verifyServerProperties,
      sessions: ssl.originSessionCacheSize > 0 ? new TlsSessionCache(ssl.originSessionCacheSize) : null,
    };
  } catch (e) {
    const what = opts.cert !== undefined ? `${RECORD.clientCert} ${ssl.clientCert ?? ''} / ${RECORD.clientKey} ${ssl.clientKey ?? ssl.clientCert ?? ''}` : `${RECORD.clientCa} ${ssl.clientCa ?? ''}`;
    return fail([`${what}: ${message(e)}`]);
  }
}

/**
 * The subset of tls.createServer / `new tls.TLSSocket(s, {isServer: true})` options we set.
 * tls.Server ignores `secureContext` and builds its default context from `cert`/`key`/`ca`, so
 * the default line's PEMs are given too (a TLSSocket made directly uses `secureContext`).
 */
export interface ServerTlsOptions {
  readonly secureContext?: tls.SecureContext;
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string[];
  readonly SNICallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
}

/** Inbound TLS for every listener of one generation. */
export interface ServerTls {
  /** The `dest_ip=*` context (the first such line), or null when there is none. */
  readonly secureContext: tls.SecureContext | null;
  /** certification_level >= 1. */
  readonly requestCert: boolean;
  /** certification_level == 2. */
  readonly rejectUnauthorized: boolean;
  /**
   * The context for a connection: SNI against certificate names (exact, then wildcard for one
   * leftmost label), then `dest_ip` equal to the local address, then `*`; null if none applies.
   */
  select(servername: string | null, localAddress: string | null): tls.SecureContext | null;
  /**
   * Options for a listener bound to `localAddress` (or for one connection whose local address is
   * known): the default context is that address's `dest_ip` line (else `*`), and SNICallback picks
   * a name match, else keeps the default. A listener on a wildcard address that has dest_ip lines
   * should make each TLSSocket itself with `options(socket.localAddress)`.
   */
  options(localAddress?: string | null): ServerTlsOptions;
}

/** Lower case, no brackets, IPv4-mapped IPv6 as plain IPv4. */
function normalizeIp(ip: string): string {
  const a = ip.replace(/^\[|\]$/g, '').toLowerCase();
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return m?.[1] ?? a;
}

/** Lower case, no trailing dot. */
function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Build one context per ssl_multicert.config line (with the inbound CA when client certificates
 * are requested) and the SNI / dest_ip selection over them. Throws ProxyError
 * PXY_ERR_CONFIG_INVALID listing every bad line as `file:line: ...` (unreadable file, bad PEM,
 * expired certificate, certificate/key mismatch) and a bad inbound CA by its record.
 */
export function buildServerContexts(entries: readonly SslCertEntry[], inboundCa: string | null, certificationLevel: 0 | 1 | 2): ServerTls {
  const problems: string[] = [];
  let ca: string[] | undefined;
  if (inboundCa !== null && certificationLevel >= 1) {
    try {
      ca = readCaBundle(inboundCa);
    } catch (e) {
      problems.push(`${RECORD.inboundCa} ${inboundCa}: ${message(e)}`);
    }
  }
  const exact = new Map<string, tls.SecureContext>();
  const wildcard = new Map<string, tls.SecureContext>();
  const byIp = new Map<string, tls.SecureContext>();
  const pems = new Map<tls.SecureContext, { cert: string; key: string; ca?: string[] }>();
  let star: tls.SecureContext | null = null;
  for (const e of entries) {
    const where = (f: string): string => `${e.file}:${e.line}: ${f === e.certFile ? 'ssl_cert_name' : 'ssl_key_name'} ${f}`;
    const pair = readCertAndKey(e.certFile, e.keyFile, where, problems);
    if (pair === null) continue;
    const pem: { cert: string; key: string; ca?: string[] } = ca === undefined ? pair : { ...pair, ca };
    let ctx: tls.SecureContext;
    try {
      ctx = tls.createSecureContext(pem);
      pems.set(ctx, pem);
    } catch (err) {
      problems.push(`${e.file}:${e.line}: ssl_cert_name ${e.certFile} / ssl_key_name ${e.keyFile}: ${message(err)}`);
      continue;
    }
    for (const name of certInfo(pair.cert).names) {
      const map = name.startsWith('*.') ? wildcard : exact;
      const key = name.startsWith('*.') ? name.slice(2) : name;
      if (!map.has(key)) map.set(key, ctx);
    }
    if (e.destIp === '*') star ??= ctx;
    else if (isIP(e.destIp.replace(/^\[|\]$/g, '')) !== 0) {
      const ip = normalizeIp(e.destIp);
      if (!byIp.has(ip)) byIp.set(ip, ctx);
    } else problems.push(`${e.file}:${e.line}: dest_ip ${e.destIp}: not an IP address or *`);
  }
  if (problems.length > 0) fail(problems);

  const byName = (servername: string): tls.SecureContext | undefined => {
    const n = normalizeName(servername);
    const hit = exact.get(n);
    if (hit !== undefined) return hit;
    const dot = n.indexOf('.');
    return dot > 0 ? wildcard.get(n.slice(dot + 1)) : undefined;
  };
  const byLocal = (localAddress: string | null | undefined): tls.SecureContext | null =>
    (localAddress ? byIp.get(normalizeIp(localAddress)) : undefined) ?? star;
  const requestCert = certificationLevel >= 1;
  const rejectUnauthorized = certificationLevel === 2;
  return {
    secureContext: star,
    requestCert,
    rejectUnauthorized,
    select: (servername, localAddress) => (servername ? byName(servername) : undefined) ?? byLocal(localAddress),
    options: (localAddress) => {
      const fallback = byLocal(localAddress);
      return {
        ...(fallback === null ? {} : { secureContext: fallback, ...pems.get(fallback) }),
        SNICallback: (servername, cb) => cb(null, byName(servername) ?? fallback ?? undefined),
        requestCert,
        rejectUnauthorized,
      };
    },
  };
}
