/**
 * TLS ClientHello parser (pure, no I/O): finds the SNI and ALPN a client offers without
 * terminating TLS, for SNI routing (ATS reads the ClientHello itself the same way, #12290).
 *
 * Input is the bytes read from the client so far. The ClientHello may be spread over several
 * TLS records and the buffer may end anywhere: the answer is then `incomplete`, with a `resume`
 * point so the next call (with the same bytes plus more) scans only the new records. Work is
 * O(bytes) across all calls; nothing is copied until the whole message is there.
 *
 * Choices (RFC 6066 §3, and what OpenSSL rejects as a decode error) for server_name:
 *  - an empty list, a name_type other than host_name (0), an empty name, a name over 255 bytes,
 *    a name with a byte outside printable ASCII, or two host_names → `invalid`;
 *  - an IP literal (RFC 6066 forbids them in HostName, some clients send them) → `sni: null`,
 *    as if no SNI was sent;
 *  - the name is lower-cased and one trailing dot removed.
 * GREASE values (RFC 8701) are skipped in extensions, ALPN and supported_versions. With ECH the
 * parsed server_name is the outer (public) name, which is what the router must use.
 */
import { isIP } from 'node:net';

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** Largest record fragment accepted (RFC 8446 §5.2: 2^14 plus expansion). */
export const MAX_RECORD_LENGTH = 16384 + 256;
/** Largest ClientHello body the length fields allow: version, random, session_id, suites, compression, extensions. */
const MAX_HELLO_LENGTH = 2 + 32 + (1 + 32) + (2 + 65534) + (1 + 255) + (2 + 65535);
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;
const EXT_ECH = 0xfe0d;
const MAX_HOST_NAME = 255;

export interface ClientHello {
  /** host_name from server_name: lower case, no trailing dot; null when absent or an IP literal. */
  readonly sni: string | null;
  /** ALPN protocol names offered, in order, GREASE removed. */
  readonly alpn: readonly string[];
  /** ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3). */
  readonly legacyVersion: number;
  /** supported_versions, in order, GREASE removed; empty when the extension is absent. */
  readonly versions: readonly number[];
  /** An encrypted_client_hello extension was offered (`sni` is then the outer name). */
  readonly ech: boolean;
  /** Bytes of all the records that carried the ClientHello. */
  readonly length: number;
}

/** Where an incomplete scan stopped: pass it back with the same bytes plus more. */
export interface ScanPoint {
  /** Offset of the first record not yet complete. */
  readonly off: number;
  /** Handshake bytes in the complete records before `off`. */
  readonly have: number;
  /** Handshake message length once its 4-byte header is in, else -1. */
  readonly hsLength: number;
}

export type ClientHelloResult =
  | { readonly kind: 'incomplete'; readonly resume: ScanPoint }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'ok'; readonly hello: ClientHello };

const START: ScanPoint = { off: 0, have: 0, hsLength: -1 };

const invalid = (reason: string): ClientHelloResult => ({ kind: 'invalid', reason });

/**
 * Parse the ClientHello at the start of `buf`. `from` must come from an earlier call on a prefix
 * of `buf` (it lets a caller that reads byte by byte stay linear).
 */
export function parseClientHello(buf: Buffer, from: ScanPoint = START): ClientHelloResult {
  let { off, have, hsLength } = from;
  for (;;) {
    const avail = buf.length - off;
    if (avail >= 1 && buf[off] !== RECORD_HANDSHAKE) return invalid(`record type ${buf[off]} is not handshake (22)`);
    if (avail >= 2 && buf[off + 1] !== 3) return invalid(`record version ${buf[off + 1]}.x is not TLS`);
    if (avail < 5) return { kind: 'incomplete', resume: { off, have, hsLength } };
    const len = buf.readUInt16BE(off + 3);
    if (len === 0) return invalid('empty handshake record');
    if (len > MAX_RECORD_LENGTH) return invalid(`record length ${len} exceeds ${MAX_RECORD_LENGTH}`);
    if (off === 0 && avail > 5 && buf[5] !== HANDSHAKE_CLIENT_HELLO) {
      return invalid(`handshake type ${buf[5]} is not ClientHello (1)`);
    }
    if (avail < 5 + len) return { kind: 'incomplete', resume: { off, have, hsLength } };
    off += 5 + len;
    have += len;
    if (hsLength < 0 && have >= 4) {
      hsLength = handshakePayload(buf, off).readUIntBE(1, 3);
      if (hsLength > MAX_HELLO_LENGTH) return invalid(`ClientHello length ${hsLength} exceeds ${MAX_HELLO_LENGTH}`);
    }
    if (hsLength >= 0 && have >= 4 + hsLength) {
      if (have > 4 + hsLength) return invalid('bytes after the ClientHello in its last record');
      const body = parseBody(handshakePayload(buf, off).subarray(4));
      return typeof body === 'string' ? invalid(body) : { kind: 'ok', hello: { ...body, length: off } };
    }
  }
}

/** The handshake bytes of the (already validated) records in buf[0, end): copied only if there are several. */
function handshakePayload(buf: Buffer, end: number): Buffer {
  const parts: Buffer[] = [];
  for (let p = 0; p < end; ) {
    const len = buf.readUInt16BE(p + 3);
    parts.push(buf.subarray(p + 5, p + 5 + len));
    p += 5 + len;
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** A length-prefixed vector at `p` ending by `end`: its [start, stop), or null if it overruns. */
function vec(b: Buffer, p: number, end: number, lenBytes: 1 | 2): [number, number] | null {
  if (p + lenBytes > end) return null;
  const start = p + lenBytes;
  const stop = start + (lenBytes === 1 ? b[p] : b.readUInt16BE(p));
  return stop > end ? null : [start, stop];
}

const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);

type Fields = { sni: string | null; alpn: string[]; legacyVersion: number; versions: number[]; ech: boolean };

/** The ClientHello body (after the 4-byte handshake header): the fields, or why it is malformed. */
function parseBody(b: Buffer): Fields | string {
  const end = b.length;
  if (end < 2 + 32) return 'ClientHello truncated before session_id';
  const out: Fields = { sni: null, alpn: [], legacyVersion: b.readUInt16BE(0), versions: [], ech: false };
  const sid = vec(b, 34, end, 1);
  if (!sid || sid[1] - sid[0] > 32) return 'bad session_id';
  const suites = vec(b, sid[1], end, 2);
  if (!suites || suites[0] === suites[1] || (suites[1] - suites[0]) % 2 !== 0) return 'bad cipher_suites';
  const comp = vec(b, suites[1], end, 1);
  if (!comp || comp[0] === comp[1]) return 'bad compression_methods';
  if (comp[1] === end) return out; // no extensions (allowed before TLS 1.3)
  const exts = vec(b, comp[1], end, 2);
  if (!exts || exts[1] !== end) return 'extensions length does not match the ClientHello length';
  const seen = new Set<number>();
  for (let p = exts[0]; p < end; ) {
    if (end - p < 4) return 'extension header truncated';
    const type = b.readUInt16BE(p);
    const ext = vec(b, p + 2, end, 2);
    if (!ext) return `extension ${type} runs past the end`;
    p = ext[1];
    if (isGrease(type)) continue;
    if (seen.has(type)) return `duplicate extension ${type}`;
    seen.add(type);
    let err: string | null = null;
    if (type === EXT_SERVER_NAME) err = readServerName(b, ext, out);
    else if (type === EXT_ALPN) err = readAlpn(b, ext, out);
    else if (type === EXT_SUPPORTED_VERSIONS) err = readVersions(b, ext, out);
    else if (type === EXT_ECH) out.ech = true;
    if (err !== null) return err;
  }
  return out;
}

function readServerName(b: Buffer, [s, e]: [number, number], out: Fields): string | null {
  const list = vec(b, s, e, 2);
  if (!list || list[1] !== e) return 'server_name list length mismatch';
  let name: string | null = null;
  for (let p = list[0]; p < list[1]; ) {
    if (b[p] !== 0) return `server_name type ${b[p]} is not host_name (0)`;
    const n = vec(b, p + 1, list[1], 2);
    if (!n) return 'server_name entry runs past the end';
    p = n[1];
    if (name !== null) return 'two host_name entries in server_name';
    if (n[0] === n[1]) return 'empty host_name';
    if (n[1] - n[0] > MAX_HOST_NAME) return `host_name longer than ${MAX_HOST_NAME} bytes`;
    for (let i = n[0]; i < n[1]; i++) {
      if (b[i] < 0x21 || b[i] > 0x7e) return 'host_name has a byte outside printable ASCII';
    }
    name = b.toString('latin1', n[0], n[1]).toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    if (name === '') return 'host_name is only a dot';
  }
  if (name === null) return 'empty server_name list';
  const bare = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  out.sni = isIP(bare) === 0 ? name : null; // RFC 6066: IP literals are not host names
  return null;
}

function readAlpn(b: Buffer, [s, e]: [number, number], out: Fields): string | null {
  const list = vec(b, s, e, 2);
  if (!list || list[1] !== e || list[0] === list[1]) return 'bad ALPN list';
  for (let p = list[0]; p < list[1]; ) {
    const n = vec(b, p, list[1], 1);
    if (!n || n[0] === n[1]) return 'bad ALPN protocol name';
    p = n[1];
    if (n[1] - n[0] === 2 && isGrease(b.readUInt16BE(n[0]))) continue;
    out.alpn.push(b.toString('latin1', n[0], n[1]));
  }
  return null;
}

function readVersions(b: Buffer, [s, e]: [number, number], out: Fields): string | null {
  const list = vec(b, s, e, 1);
  if (!list || list[1] !== e || list[0] === list[1] || (list[1] - list[0]) % 2 !== 0) return 'bad supported_versions';
  for (let p = list[0]; p < list[1]; p += 2) {
    const v = b.readUInt16BE(p);
    if (!isGrease(v)) out.versions.push(v);
  }
  return null;
}
