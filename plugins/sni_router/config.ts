/**
 * sni.yaml for sni_router: ATS's layer-4 routing keys (ats.md 3.5). Every problem in the file is
 * collected as a `file:line:col` diagnostic naming the key; a load with any error is refused whole.
 */
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import type { LineCounter } from 'yaml';
import type { Node, Pair, Scalar, YAMLMap } from 'yaml';
import { withYaml } from '../../host/api/index.js';
import type { PluginDiagnostic, Yaml } from '../../host/api/index.js';

export type RouteKind = 'tunnel' | 'forward' | 'partial_blind';
export type VerifyClient = 'NONE' | 'MODERATE' | 'STRICT';

/** A tunnel_route / forward_route / partial_blind_route value. */
export interface RouteTemplate {
  readonly kind: RouteKind;
  /** Host, possibly with `$N` (N = 1: the glob's capture). */
  readonly host: string;
  /** A fixed port, or null: the connection's local port (`{inbound_local_port}` or no port given). */
  readonly port: number | null;
}

export interface SniRule {
  /** As written: lower case, no trailing dot; '' matches connections without SNI. */
  readonly fqdn: string;
  /** For `*.x.com` and `*`: the whole-name matcher with one capture; null for an exact name. */
  readonly glob: RegExp | null;
  readonly route: RouteTemplate | null;
  /** tunnel_alpn (partial_blind_route only). */
  readonly alpn: readonly string[];
  /** inbound_port_ranges; empty = every port. */
  readonly ports: readonly (readonly [number, number])[];
  /** ip_allow; null = every client. */
  readonly ipAllow: BlockList | null;
  readonly verifyClient: VerifyClient | null;
  readonly file: string;
  readonly line: number;
}

export interface SniTable {
  readonly file: string;
  readonly rules: readonly SniRule[];
}

export interface SniLoad {
  readonly table: SniTable;
  readonly diagnostics: PluginDiagnostic[];
}

/** ATS keys sni_router accepts and ignores with a warning. */
const NOT_SUPPORTED = new Set([
  'verify_server_policy', 'verify_server_properties', 'verify_client_ca_certs', 'verify_origin_server',
  'client_cert', 'client_key', 'client_sni_policy', 'host_sni_policy', 'server_cipher_suite',
  'server_TLSv1_3_cipher_suites', 'server_group_list', 'valid_tls_version_min_in', 'valid_tls_version_max_in',
  'valid_tls_versions_in', 'http2', 'disable_h2', 'http2_buffer_water_mark', 'http2_initial_window_size_in',
  'http2_max_settings_frames_per_minute', 'http2_max_ping_frames_per_minute', 'http2_max_priority_frames_per_minute',
  'http2_max_rst_stream_frames_per_minute', 'http2_max_continuation_frames_per_minute',
  'http2_max_empty_frames_per_minute', 'quic', 'server_max_early_data', 'tunnel_prewarm', 'tunnel_prewarm_srv',
  'tunnel_prewarm_rate', 'tunnel_prewarm_min', 'tunnel_prewarm_max', 'tunnel_prewarm_connect_timeout',
  'tunnel_prewarm_inactive_timeout',
]);
const ROUTE_KEYS: Readonly<Record<string, RouteKind>> = {
  tunnel_route: 'tunnel',
  forward_route: 'forward',
  partial_blind_route: 'partial_blind',
};
const VERIFY_CLIENT: readonly VerifyClient[] = ['NONE', 'MODERATE', 'STRICT'];
const HOST_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A DNS name (letters, digits, `-`, `_`) or an IP address: what a route may dial. */
export function isRouteHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  return host.length > 0 && host.length <= 253 && host.toLowerCase().split('.').every((l) => HOST_LABEL.test(l));
}

/** Read and parse `file`; an unreadable file is one error at 1:1. */
export function loadSniYaml(file: string, configDir: string): SniLoad {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const msg = `cannot read sni.yaml: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    return { table: { file, rules: [] }, diagnostics: [{ file, line: 1, col: 1, message: msg, severity: 'error' }] };
  }
  return parseSniYaml(text, file, configDir);
}

/** Parse sni.yaml text. `configDir` resolves relative `ip_allow: "@file"` paths. */
export function parseSniYaml(text: string, file: string, configDir: string): SniLoad {
  return withYaml((yaml) => {
    const lc = new yaml.LineCounter();
    const doc = yaml.parseDocument(text, { lineCounter: lc });
    const diagnostics: PluginDiagnostic[] = [];
    const at = (offset: number, message: string, severity: 'error' | 'warning' = 'error'): void => {
      const { line, col } = lc.linePos(offset);
      diagnostics.push({ file, line, col, message, severity });
    };
    const rules: SniRule[] = [];
    for (const e of [...doc.errors, ...doc.warnings]) {
      const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
      diagnostics.push({ file, line: pos.line, col: pos.col, message: `YAML: ${e.message.split(' at line ')[0]}`, severity: doc.errors.includes(e) ? 'error' : 'warning' });
    }
    if (doc.errors.length > 0) return { table: { file, rules }, diagnostics };
    const root = doc.contents;
    if (root === null || (yaml.isScalar(root) && root.value === null)) {
      at(0, "no 'sni:' list: nothing is routed", 'warning');
      return { table: { file, rules }, diagnostics };
    }
    if (!yaml.isMap(root)) {
      at(start(root), "the root must be a map with an 'sni:' list");
      return { table: { file, rules }, diagnostics };
    }
    for (const pair of root.items) {
      const key = keyName(pair, yaml);
      if (key === 'sni') continue;
      at(keyStart(pair), `unknown key '${key}' ignored (the root holds 'sni:')`, 'warning');
    }
    const list = root.get('sni', true);
    if (list === undefined) at(start(root), "no 'sni:' list: nothing is routed", 'warning');
    else if (yaml.isSeq(list)) {
      list.items.forEach((item, i) => {
        const rule = yaml.isMap(item) ? parseItem(item as YAMLMap, i, { file, configDir, at, lc, diagnostics, yaml }) : null;
        if (!yaml.isMap(item)) at(start(item as Node), `sni[${i}]: an item must be a map with 'fqdn'`);
        if (rule) rules.push(rule);
      });
    } else if (!(yaml.isScalar(list) && list.value === null)) at(start(list as Node), "'sni' must be a list of items");
    return { table: { file, rules }, diagnostics };
  });
}

interface ItemCtx {
  readonly yaml: Yaml;
  readonly file: string;
  readonly configDir: string;
  readonly lc: LineCounter;
  readonly diagnostics: PluginDiagnostic[];
  at(offset: number, message: string, severity?: 'error' | 'warning'): void;
}

function parseItem(item: YAMLMap, i: number, c: ItemCtx): SniRule | null {
  const errorsBefore = c.diagnostics.filter((d) => d.severity !== 'warning').length;
  const byKey = new Map<string, Pair>();
  for (const pair of item.items) {
    const key = keyName(pair, c.yaml);
    byKey.set(key, pair);
    if (key === 'fqdn' || key === 'inbound_port_ranges' || key === 'ip_allow' || key === 'verify_client' || key === 'tunnel_alpn' || key in ROUTE_KEYS) continue;
    if (NOT_SUPPORTED.has(key)) c.at(keyStart(pair), `sni[${i}].${key}: not supported by sni_router (ignored)`, 'warning');
    else c.at(keyStart(pair), `sni[${i}]: unknown key '${key}' ignored`, 'warning');
  }
  const line = c.lc.linePos(start(item)).line;
  const fqdnPair = byKey.get('fqdn');
  if (!fqdnPair) {
    c.at(start(item), `sni[${i}]: 'fqdn' is required`);
    return null;
  }
  const name = `sni[${i}]`;
  const fqdnRaw = scalarText(fqdnPair, `${name}.fqdn`, c);
  const fqdn = (fqdnRaw ?? '').toLowerCase().replace(/\.$/, '');
  let glob: RegExp | null = null;
  if (fqdn.includes('*')) {
    if (fqdn === '*') glob = /^(.*)$/;
    else if (fqdn.startsWith('*.') && !fqdn.slice(1).includes('*')) glob = new RegExp(`^(.*)${escapeRe(fqdn.slice(1))}$`);
    else c.at(valueStart(fqdnPair), `${name}.fqdn: '${fqdnRaw}': '*' is allowed only as the whole leftmost label ('*.example.com' or '*')`);
  }
  let route: RouteTemplate | null = null;
  for (const [key, kind] of Object.entries(ROUTE_KEYS)) {
    const pair = byKey.get(key);
    if (!pair) continue;
    if (route) {
      c.at(keyStart(pair), `${name}.${key}: only one of tunnel_route, forward_route, partial_blind_route per item`);
      continue;
    }
    const text = scalarText(pair, `${name}.${key}`, c);
    if (text !== null) route = parseRoute(text, kind, glob ? 1 : 0, `${name}.${key}`, valueStart(pair), c) ?? route;
  }
  const alpnPair = byKey.get('tunnel_alpn');
  const alpn = alpnPair ? stringList(alpnPair, `${name}.tunnel_alpn`, c) : [];
  if (alpnPair && route?.kind !== 'partial_blind') c.at(keyStart(alpnPair), `${name}.tunnel_alpn: only applies with partial_blind_route (ignored)`, 'warning');
  const portsPair = byKey.get('inbound_port_ranges');
  const ports = portsPair ? portRanges(portsPair, `${name}.inbound_port_ranges`, c) : [];
  const ipPair = byKey.get('ip_allow');
  const ipAllow = ipPair ? ipAllowList(ipPair, `${name}.ip_allow`, c) : null;
  const vcPair = byKey.get('verify_client');
  let verifyClient: VerifyClient | null = null;
  if (vcPair) {
    const v = scalarText(vcPair, `${name}.verify_client`, c)?.toUpperCase() ?? '';
    if (!(VERIFY_CLIENT as readonly string[]).includes(v)) c.at(valueStart(vcPair), `${name}.verify_client: '${v}' is not NONE, MODERATE or STRICT`);
    else verifyClient = v as VerifyClient;
    if (verifyClient !== null && verifyClient !== 'NONE') {
      if (route?.kind === 'tunnel') {
        c.at(keyStart(vcPair), `${name}.verify_client: no effect on a tunnel_route (TLS is not terminated)`, 'warning');
      } else {
        // Refused rather than ignored: silently accepting clients without a certificate would be worse.
        c.at(keyStart(vcPair), `${name}.verify_client: ${verifyClient} is not supported by sni_router (this host cannot request client certificates per name; use proxy.config.ssl.client.certification_level)`);
      }
    }
  }
  if (c.diagnostics.filter((d) => d.severity !== 'warning').length > errorsBefore) return null;
  return { fqdn, glob, route, alpn, ports, ipAllow, verifyClient, file: c.file, line };
}

function parseRoute(text: string, kind: RouteKind, captures: number, name: string, offset: number, c: ItemCtx): RouteTemplate | null {
  let host = text;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    host = text.slice(1, close);
    const rest = close < 0 ? 'x' : text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return fail(c, offset, `${name}: '${text}' is not [ipv6]:port`);
    portText = rest === '' ? null : rest.slice(1);
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    if (text.indexOf(':') !== colon) return fail(c, offset, `${name}: '${text}': an IPv6 address needs brackets ([::1]:443)`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  for (const m of host.matchAll(/\$(\d+)/g)) {
    const n = Number(m[1]);
    if (n < 1 || n > captures) {
      return fail(c, offset, `${name}: '$${m[1]}' has no capture ('fqdn' ${captures ? 'has one: $1' : "has no '*'"})`);
    }
  }
  if (!isRouteHost(host.replace(/\$\d+/g, 'x'))) return fail(c, offset, `${name}: '${host}' is not a host name or IP address`);
  let port: number | null = null;
  if (portText === '{proxy_protocol_port}') return fail(c, offset, `${name}: {proxy_protocol_port} is not supported by sni_router (no PROXY protocol)`);
  if (portText !== null && portText !== '{inbound_local_port}') {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) return fail(c, offset, `${name}: port '${portText}' is not 1-65535 or {inbound_local_port}`);
  }
  return { kind, host: host.toLowerCase(), port };
}

function portRanges(pair: Pair, name: string, c: ItemCtx): [number, number][] {
  const out: [number, number][] = [];
  const items = c.yaml.isSeq(pair.value) ? pair.value.items : [pair.value];
  for (const it of items) {
    const text = c.yaml.isScalar(it) ? String(it.value) : null;
    const m = text === null ? null : /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(text);
    const lo = m ? Number(m[1]) : 0;
    const hi = m ? Number(m[2] ?? m[1]) : 0;
    if (lo < 1 || hi > 65535 || lo > hi) c.at(start(it as Node), `${name}: '${text ?? '?'}' is not a port or a port range a-b within 1-65535`);
    else out.push([lo, hi]);
  }
  return out;
}

/** `"cidr,a-b,addr"` inline, or `"@file"` (comma- or line-separated, `#` comments), relative to the config dir. */
function ipAllowList(pair: Pair, name: string, c: ItemCtx): BlockList | null {
  const text = scalarText(pair, name, c);
  if (text === null) return null;
  const list = new BlockList();
  const offset = valueStart(pair) + ((pair.value as Scalar).type?.startsWith('QUOTE') ? 1 : 0);
  if (!text.startsWith('@')) {
    let pos = 0;
    for (const entry of text.split(',')) {
      const err = addIpEntry(list, entry.trim());
      if (err) c.at(offset + pos + (entry.length - entry.trimStart().length), `${name}: ${err}`);
      pos += entry.length + 1;
    }
    return list;
  }
  const path = isAbsolute(text.slice(1)) ? text.slice(1) : join(c.configDir, text.slice(1));
  let body: string;
  try {
    body = readFileSync(path, 'utf8');
  } catch (err) {
    c.at(valueStart(pair), `${name}: cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return null;
  }
  body.split('\n').forEach((lineText, ln) => {
    const code = lineText.replace(/#.*/, '');
    let col = 1;
    for (const entry of code.split(',')) {
      const trimmed = entry.trim();
      const err = trimmed === '' ? null : addIpEntry(list, trimmed);
      if (err) c.diagnostics.push({ file: path, line: ln + 1, col: col + entry.length - entry.trimStart().length, message: `${name}: ${err}`, severity: 'error' });
      col += entry.length + 1;
    }
  });
  return list;
}

/** Add `addr`, `addr/bits` or `a-b` to the list; an error message if it is none of those. */
function addIpEntry(list: BlockList, entry: string): string | null {
  const bad = `'${entry}' is not an address, a CIDR or a range a-b`;
  try {
    const [a, b] = entry.split('-', 2).map((s) => s.trim());
    if (b !== undefined) {
      if (isIP(a!) === 0 || isIP(a!) !== isIP(b)) return bad;
      list.addRange(a!, b, isIP(b) === 6 ? 'ipv6' : 'ipv4');
      return null;
    }
    const [addr, bits] = entry.split('/', 2);
    const fam = isIP(addr!);
    if (fam === 0) return bad;
    if (bits === undefined) list.addAddress(addr!, fam === 6 ? 'ipv6' : 'ipv4');
    else if (/^\d{1,3}$/.test(bits) && Number(bits) <= (fam === 6 ? 128 : 32)) list.addSubnet(addr!, Number(bits), fam === 6 ? 'ipv6' : 'ipv4');
    else return bad;
    return null;
  } catch {
    return bad; // BlockList refuses a range whose start is after its end
  }
}

function stringList(pair: Pair, name: string, c: ItemCtx): string[] {
  const items = c.yaml.isSeq(pair.value) ? pair.value.items : [pair.value];
  const out: string[] = [];
  for (const it of items) {
    if (c.yaml.isScalar(it) && it.value !== null && String(it.value) !== '') out.push(String(it.value));
    else c.at(start(it as Node), `${name}: each entry must be a protocol name`);
  }
  return out;
}

function scalarText(pair: Pair, name: string, c: ItemCtx): string | null {
  if (c.yaml.isScalar(pair.value) && pair.value.value !== null && typeof pair.value.value !== 'object') return String(pair.value.value);
  const hint = name.endsWith('.fqdn') ? " (use '' for connections without SNI)" : '';
  c.at(pair.value ? start(pair.value as Node) : keyStart(pair), `${name}: must be a string${hint}`);
  return null;
}

function fail(c: ItemCtx, offset: number, message: string): null {
  c.at(offset, message);
  return null;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const start = (n: Node | null | undefined): number => n?.range?.[0] ?? 0;
const keyStart = (p: Pair): number => start(p.key as Node);
const valueStart = (p: Pair): number => (p.value ? start(p.value as Node) : keyStart(p));
const keyName = (p: Pair, yaml: Yaml): string => (yaml.isScalar(p.key) ? String(p.key.value) : String(p.key));
