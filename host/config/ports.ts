/**
 * `proxy.config.http.server_ports` and `proxy.config.http.connect_ports`, parsed as ATS does.
 *
 * server_ports: descriptors separated by spaces or commas; each is `:`-separated keywords,
 * case-insensitive (`8443:ssl:ip-in=[::1]`). A colon inside `[...]` does not split.
 * Differences from ATS, on purpose (ATS warns and carries on, or lets the last keyword win):
 * - an unknown keyword, a bad port or address, `ssl` with `blind`, a descriptor without a port,
 *   and the same port listed twice are errors;
 * - `ipv4` with `ipv6` makes two descriptors, one per family;
 * - port 0 is allowed: an ephemeral port (tests use it).
 * ATS keywords tsproxy does not implement are accepted with a warning that names them.
 */
import { isIP } from 'node:net';
import type { ConnectPorts, Diagnostic, Parsed, PortDescriptor } from './types.js';

/** Where a value starts: `col` is the 1-based column of its first character. */
export interface ValuePosition {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

interface Token {
  readonly text: string;
  /** Offset of the token in the value. */
  readonly at: number;
}

/** Split on spaces and commas (and any whitespace), keeping offsets. */
function splitList(text: string): Token[] {
  return [...text.matchAll(/[^\s,]+/g)].map((m) => ({ text: m[0], at: m.index }));
}

/** Split a descriptor on `:` outside brackets; null when a `[` is never closed. */
function splitDescriptor(d: Token): Token[] | null {
  const items: Token[] = [];
  let start = 0;
  let bracket = false;
  for (let i = 0; i <= d.text.length; i++) {
    const c = d.text.charAt(i);
    if (bracket) {
      if (c === ']') bracket = false;
      else if (i === d.text.length) return null;
    } else if (c === '[') {
      bracket = true;
    } else if (c === ':' || i === d.text.length) {
      if (i > start) items.push({ text: d.text.slice(start, i), at: d.at + start });
      start = i + 1;
    }
  }
  return items;
}

const IGNORED_FLAGS = new Set(['tr-in', 'tr-out', 'tr-full', 'tr-pass', 'pp', 'pp-clnt', 'compressed', 'mptcp', 'quic', 'plugin', 'allow-plain']);
const IGNORED_PREFIXES = ['ip-out', 'ip-resolve', 'proto', 'fd'];

/** ATS `checkPrefix`: `prefix`, then an optional `=` or `-`, then the value; null if no match. */
function prefixValue(item: string, prefix: string): string | null {
  if (item.slice(0, prefix.length).toLowerCase() !== prefix) return null;
  const rest = item.slice(prefix.length);
  return rest.startsWith('=') || rest.startsWith('-') ? rest.slice(1) : rest;
}

/** Parse server_ports. Never throws; every problem is a diagnostic. */
export function parseServerPorts(text: string, where: ValuePosition): Parsed<PortDescriptor[]> {
  const diagnostics: Diagnostic[] = [];
  const report = (at: number, message: string, severity: Diagnostic['severity'] = 'error'): void => {
    diagnostics.push({ file: where.file, line: where.line, col: where.col + at, message, severity });
  };
  const out: PortDescriptor[] = [];
  const seen = new Set<string>();
  for (const d of splitList(text)) {
    const items = splitDescriptor(d);
    if (!items) {
      report(d.at + d.text.indexOf('['), `unclosed '[' in descriptor '${d.text}'`);
      continue;
    }
    let port: number | null = null;
    let ssl = false;
    let blind = false;
    let v4 = false;
    let v6 = false;
    let ipIn: string | null = null;
    let ok = true;
    const fail = (at: number, message: string): void => {
      report(at, `${message} in descriptor '${d.text}'`);
      ok = false;
    };
    for (const item of items) {
      const lower = item.text.toLowerCase();
      const ipInValue = prefixValue(item.text, 'ip-in');
      if (/^\d/.test(lower)) {
        const n = /^\d+$/.test(lower) ? Number(lower) : NaN;
        if (Number.isNaN(n)) fail(item.at, `invalid port '${item.text}'`);
        else if (n > 65535) fail(item.at, `port ${lower} is out of range 0..65535`);
        else if (port !== null) fail(item.at, `second port '${item.text}'`);
        else port = n;
      } else if (lower === 'ssl') ssl = true;
      else if (lower === 'blind') blind = true;
      else if (lower === 'ipv4') v4 = true;
      else if (lower === 'ipv6') v6 = true;
      else if (ipInValue !== null) {
        const addr = /^\[.*\]$/.test(ipInValue) ? ipInValue.slice(1, -1) : ipInValue;
        if (addr === '') fail(item.at, `no address in '${item.text}' (write an IPv6 address in brackets: ip-in=[::1])`);
        else if (isIP(addr) === 0) fail(item.at, `invalid address '${ipInValue}' in '${item.text}'`);
        else ipIn = addr;
      } else if (IGNORED_FLAGS.has(lower) || IGNORED_PREFIXES.some((p) => prefixValue(lower, p) !== null)) {
        report(item.at, `option '${item.text}' in descriptor '${d.text}' is not supported by tsproxy; ignored`, 'warning');
      } else fail(item.at, `unknown option '${item.text}'`);
    }
    if (ssl && blind) fail(d.at, `'ssl' and 'blind' cannot be combined`);
    const ipFamily = ipIn === null ? null : isIP(ipIn) === 6 ? 6 : 4;
    if (ipFamily !== null && ((ipFamily === 4 && v6) || (ipFamily === 6 && v4))) {
      fail(d.at, `address ${ipIn} is not of the family given (ipv${ipFamily === 4 ? 6 : 4})`);
    }
    if (port === null && ok) fail(d.at, 'no port');
    if (!ok || port === null) continue;
    const families: (4 | 6)[] = v4 && v6 ? [4, 6] : v6 ? [6] : v4 ? [4] : [ipFamily ?? 4];
    for (const family of families) {
      const key = `${port}/${family}/${ipIn ?? '*'}`;
      if (port !== 0 && seen.has(key)) {
        report(d.at, `port ${port} (ipv${family}${ipIn ? ` ${ipIn}` : ''}) is listed twice`);
        continue;
      }
      seen.add(key);
      out.push({ port, family, ssl, blind, ipIn, text: d.text });
    }
  }
  return { value: out, diagnostics };
}

/** Parse connect_ports: ports (1..65535), `a-b` ranges with a <= b, and `*`. Never throws. */
export function parseConnectPorts(text: string, where: ValuePosition): Parsed<ConnectPorts> {
  const diagnostics: Diagnostic[] = [];
  const ranges: [number, number][] = [];
  let any = false;
  for (const t of splitList(text)) {
    const error = (message: string): void => {
      diagnostics.push({ file: where.file, line: where.line, col: where.col + t.at, message, severity: 'error' });
    };
    if (t.text === '*') {
      any = true;
      continue;
    }
    const m = /^(\d+)(?:-(\d+))?$/.exec(t.text);
    if (!m) {
      error(`invalid entry '${t.text}' (expected a port, a range a-b, or *)`);
      continue;
    }
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535) error(`'${t.text}' is out of range 1..65535`);
    else if (lo > hi) error(`range '${t.text}' is reversed`);
    else ranges.push([lo, hi]);
  }
  return { value: { any, ranges }, diagnostics };
}

/** Whether CONNECT may tunnel to `port`. */
export function connectPortAllowed(cp: ConnectPorts, port: number): boolean {
  return cp.any || cp.ranges.some(([lo, hi]) => port >= lo && port <= hi);
}
