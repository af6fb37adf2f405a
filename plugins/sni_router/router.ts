/**
 * The routing decision, pure: the first sni.yaml item (in file order, exact names and globs
 * together) whose name and inbound port match decides; its ip_allow is checked before any route.
 */
import { isIP } from 'node:net';
import type { BlockList } from 'node:net';
import type { RouteKind, SniRule, SniTable } from './config.js';
import { isRouteHost } from './config.js';

export interface RouteInput {
  /** The ClientHello's server name, or null when none was sent. */
  readonly sni: string | null;
  /** The local port the client connected to. */
  readonly localPort: number;
  readonly clientIp: string;
}

export interface RouteTarget {
  readonly host: string;
  readonly port: number;
  /** The port came from the connection, not the file: connect_ports applies (as ATS). */
  readonly dynamicPort: boolean;
}

export type RouteResult =
  | { readonly action: RouteKind; readonly target: RouteTarget; readonly alpn?: readonly string[]; readonly rule: SniRule }
  | { readonly action: 'reject'; readonly reason: string; readonly rule: SniRule }
  /** No item matched, or the item has no route: the host terminates TLS itself. */
  | { readonly action: 'none'; readonly rule: SniRule | null };

/** The name as sni.yaml compares it: lower case, no trailing dot, '' for no SNI. */
export const normalizeName = (sni: string | null): string => (sni ?? '').toLowerCase().replace(/\.$/, '');

export function route(table: SniTable, input: RouteInput): RouteResult {
  const name = normalizeName(input.sni);
  for (const rule of table.rules) {
    if (rule.ports.length > 0 && !rule.ports.some(([lo, hi]) => input.localPort >= lo && input.localPort <= hi)) continue;
    const m = rule.glob ? rule.glob.exec(name) : rule.fqdn === name ? [name] : null;
    if (!m) continue;
    if (rule.ipAllow && !allowed(rule.ipAllow, input.clientIp)) {
      return { action: 'reject', reason: `client ${input.clientIp} not in ip_allow`, rule };
    }
    if (!rule.route) return { action: 'none', rule };
    const host = rule.route.host.replace(/\$(\d+)/g, (_, n: string) => m[Number(n)] ?? '');
    if (!isRouteHost(host)) return { action: 'reject', reason: `route host '${host}' from fqdn '${name}' is not a host name`, rule };
    const target = { host, port: rule.route.port ?? input.localPort, dynamicPort: rule.route.port === null };
    return rule.route.kind === 'partial_blind' && rule.alpn.length > 0
      ? { action: rule.route.kind, target, alpn: rule.alpn, rule }
      : { action: rule.route.kind, target, rule };
  }
  return { action: 'none', rule: null };
}

function allowed(list: BlockList, ip: string): boolean {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip;
  const fam = isIP(v4);
  return fam !== 0 && list.check(v4, fam === 6 ? 'ipv6' : 'ipv4');
}
