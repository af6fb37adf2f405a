/**
 * Failures are values, then replies. An upstream problem (DNS, refused, timeout, TLS verify,
 * TLS alert, reset) is classified once into an RFC 9209 error type with a status and a reason
 * phrase that names the cause; `renderFailure` turns it into a complete HTTP/1.1 reply with a
 * `Proxy-Status` header and a short body whose length matches `Content-Length`.
 */
import { ErrorCode } from '../api/errors.js';

/** RFC 9209 §2.3 proxy error types tsproxy reports. */
export type ProxyErrorType =
  | 'dns_error'
  | 'dns_timeout'
  | 'destination_not_found'
  | 'destination_unavailable'
  | 'destination_ip_prohibited'
  | 'destination_ip_unroutable'
  | 'connection_refused'
  | 'connection_terminated'
  | 'connection_timeout'
  | 'connection_read_timeout'
  | 'connection_write_timeout'
  | 'connection_limit_reached'
  | 'tls_protocol_error'
  | 'tls_certificate_error'
  | 'tls_alert_received'
  | 'http_request_error'
  | 'http_request_denied'
  | 'http_response_incomplete'
  | 'http_protocol_error'
  | 'proxy_internal_error'
  | 'proxy_configuration_error'
  | 'proxy_loop_detected';

/** A classified failure. `params` are extra RFC 9209 parameters (e.g. `alert-id`). */
export interface Failure {
  readonly type: ProxyErrorType;
  readonly status: number;
  readonly reason: string;
  readonly detail?: string;
  readonly params?: Readonly<Record<string, string | number>>;
  readonly cause?: unknown;
}

/**
 * Default status and reason per type. ATS phrases are kept where ATS has one for the case
 * (`Access Denied`, `Invalid HTTP Request`, `Not Found on Accelerator`, `Cycle Detected`); the
 * others name the cause. Callers override the reason for a narrower case, e.g.
 * `failure('http_request_denied', 403, 'Tunnel Forbidden')` for a port outside connect_ports,
 * and `TLS Handshake Timeout` is `connection_timeout` during the handshake.
 */
export const FAILURE_DEFAULTS: Readonly<Record<ProxyErrorType, readonly [number, string]>> = {
  dns_error: [502, 'Cannot Resolve Host'],
  dns_timeout: [504, 'DNS Timeout'],
  destination_not_found: [404, 'Not Found on Accelerator'],
  destination_unavailable: [503, 'Destination Unavailable'],
  destination_ip_prohibited: [403, 'Access Denied'],
  destination_ip_unroutable: [502, 'Destination Unreachable'],
  connection_refused: [502, 'Connection Refused'],
  connection_terminated: [502, 'Connection Terminated'],
  connection_timeout: [504, 'Connect Timeout'],
  connection_read_timeout: [504, 'Read Timeout'],
  connection_write_timeout: [504, 'Write Timeout'],
  connection_limit_reached: [503, 'Connection Limit Reached'],
  tls_protocol_error: [502, 'TLS Protocol Error'],
  tls_certificate_error: [502, 'TLS Certificate Error'],
  tls_alert_received: [502, 'TLS Alert Received'],
  http_request_error: [400, 'Invalid HTTP Request'],
  http_request_denied: [403, 'Access Denied'],
  http_response_incomplete: [502, 'Incomplete Response'],
  http_protocol_error: [502, 'Malformed Server Response'],
  proxy_internal_error: [500, 'Internal Proxy Error'],
  proxy_configuration_error: [500, 'Proxy Configuration Error'],
  proxy_loop_detected: [400, 'Cycle Detected'],
};

/** A failure with an explicit status and reason. */
export function failure(type: ProxyErrorType, status: number, reason: string, detail?: string): Failure {
  return detail === undefined ? { type, status, reason } : { type, status, reason, detail };
}

/** A failure with the table's status and reason. */
export function failureOf(type: ProxyErrorType, detail?: string, extra?: { cause?: unknown; params?: Failure['params'] }): Failure {
  const [status, reason] = FAILURE_DEFAULTS[type];
  return { type, status, reason, ...(detail === undefined ? {} : { detail }), ...extra };
}

const TYPES = new Set<string>(Object.keys(FAILURE_DEFAULTS));

/** True for a Failure value (what `dial` rejects with). */
export function isFailure(v: unknown): v is Failure {
  if (typeof v !== 'object' || v === null) return false;
  const f = v as Partial<Failure>;
  return typeof f.type === 'string' && TYPES.has(f.type) && typeof f.status === 'number' && typeof f.reason === 'string';
}

/** Certificate verification failures as Node reports them in `err.code`. */
const CERT_ERRORS = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/** TLS alert registry (RFC 8446 §6 and the IANA table): description → number. */
const TLS_ALERTS: Readonly<Record<string, number>> = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  decryption_failed: 21,
  record_overflow: 22,
  decompression_failure: 30,
  handshake_failure: 40,
  no_certificate: 41,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  export_restriction: 60,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  no_renegotiation: 100,
  missing_extension: 109,
  unsupported_extension: 110,
  certificate_unobtainable: 111,
  unrecognized_name: 112,
  bad_certificate_status_response: 113,
  bad_certificate_hash_value: 114,
  unknown_psk_identity: 115,
  certificate_required: 116,
  no_application_protocol: 120,
};

/**
 * An alert received from the peer, from OpenSSL's reason as Node puts it in the code:
 * `ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE`, `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`,
 * `ERR_SSL_TLSV1_UNRECOGNIZED_NAME`. Null when the code is not a received alert.
 */
function receivedAlert(code: string): { id: number; name: string } | null {
  const m = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_(?:ALERT_)?([A-Z_]+)$/.exec(code);
  if (m?.[1] === undefined) return null;
  const name = m[1].toLowerCase().replace(/^user_cancelled$/, 'user_canceled');
  const id = TLS_ALERTS[name];
  return id === undefined ? null : { id, name };
}

const PHASE_TIMEOUT: Readonly<Record<Phase, Failure>> = {
  dns: failureOf('dns_timeout'),
  connect: failureOf('connection_timeout'),
  tls: failure('connection_timeout', 504, 'TLS Handshake Timeout'),
  read: failureOf('connection_read_timeout'),
};

/** Where the error happened: it decides what a timeout or a reset means. */
export type Phase = 'dns' | 'connect' | 'tls' | 'read';

function errCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '';
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : '';
}

function errText(err: unknown, code: string): string {
  const msg = err instanceof Error ? err.message : String(err);
  return code !== '' && !msg.includes(code) ? `${msg} (${code})` : msg;
}

/**
 * Map an error (Node's or a ProxyError with PXY_ERR_NET_TIMEOUT) to a Failure, once, at the
 * boundary. The error is kept as `cause`; `detail` is its message and code.
 */
export function classify(err: unknown, phase: Phase): Failure {
  if (isFailure(err)) return err;
  const code = errCode(err);
  const detail = errText(err, code);
  const as = (type: ProxyErrorType, extra?: { params?: Failure['params'] }): Failure => failureOf(type, detail, { cause: err, ...extra });
  const alert = receivedAlert(code);
  if (alert !== null) {
    const name = alert.name.replace(/_/g, ' ');
    return failureOf('tls_alert_received', `${name} (${alert.id})`, { cause: err, params: { 'alert-id': alert.id, 'alert-message': alert.name } });
  }
  if (CERT_ERRORS.has(code)) return as('tls_certificate_error');
  switch (code) {
    case ErrorCode.NET_TIMEOUT:
    case 'ETIMEDOUT':
    case 'ERR_SOCKET_CONNECTION_TIMEOUT':
      return { ...PHASE_TIMEOUT[phase], detail, cause: err };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
    case 'ENODATA':
    case 'ESERVFAIL':
    case 'ENONAME':
    case 'EREFUSED':
    case 'EBADNAME':
      return as('dns_error');
    case 'ECONNREFUSED':
      return as('connection_refused');
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
      return as('destination_ip_unroutable');
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
    case 'ERR_STREAM_PREMATURE_CLOSE':
      return as('connection_terminated');
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOBUFS':
    case 'ENOMEM':
      return as('proxy_internal_error');
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || phase === 'tls') return as('tls_protocol_error');
  if (phase === 'dns') return as('dns_error');
  if (phase === 'read') return as('connection_terminated');
  return as('proxy_internal_error');
}

// ---------------------------------------------------------------- rendering

/** RFC 9110 token characters (also what RFC 8941 allows after the first character of a token). */
const TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/;

/** RFC 8941 §4.1.6 sf-string: printable ASCII, `"` and `\` escaped; anything else becomes `?`. */
export function sfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function sfItem(v: string | number): string {
  return typeof v === 'number' && Number.isInteger(v) ? String(v) : sfString(String(v));
}

/** Printable reason phrase: no CR, LF or other controls. */
function cleanReason(reason: string): string {
  return reason.replace(/[^\x20-\x7e\t]/g, '?');
}

/** The `Proxy-Status` field value: `tsproxy; error=<type>; details="..."` plus any params. */
export function proxyStatusHeader(f: Failure, proxyName = 'tsproxy'): string {
  let v = `${TOKEN.test(proxyName) ? proxyName : sfString(proxyName)}; error=${f.type}`;
  if (f.detail !== undefined && f.detail !== '') v += `; details=${sfString(f.detail)}`;
  for (const [k, p] of Object.entries(f.params ?? {})) {
    if (/^[a-z*][a-z0-9_\-.*]*$/.test(k)) v += `; ${k}=${sfItem(p)}`;
  }
  return v;
}

/**
 * A complete HTTP/1.1 error reply: status line with the failure's reason, `Date`, `Server`,
 * `Proxy-Status`, `Content-Type: text/plain`, `Cache-Control: no-store`, `Content-Length`
 * matching the body exactly, `Connection: close`, then the body (status, reason, type, detail).
 */
export function renderFailure(f: Failure, proxyName = 'tsproxy'): Buffer {
  const reason = cleanReason(f.reason);
  const detail = f.detail === undefined || f.detail === '' ? '' : `: ${f.detail.replace(/[^\x20-\x7e]/g, '?')}`;
  const body = `${f.status} ${reason}\n${f.type}${detail}\n`;
  const head =
    `HTTP/1.1 ${f.status} ${reason}\r\n` +
    `Date: ${new Date().toUTCString()}\r\n` +
    `Server: tsproxy\r\n` +
    `Proxy-Status: ${proxyStatusHeader(f, proxyName)}\r\n` +
    `Content-Type: text/plain\r\n` +
    `Cache-Control: no-store\r\n` +
    `Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n` +
    `Connection: close\r\n\r\n`;
  return Buffer.from(head + body, 'latin1');
}
