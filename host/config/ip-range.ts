/**
 * IP addresses, CIDRs and `a-b` ranges as used by ip_allow.yaml.
 *
 * Addresses are numbers (bigint) tagged with their family. An IPv4-mapped IPv6 address
 * (`::ffff:1.2.3.4`) is the IPv4 address, and a range lying wholly inside `::ffff:0:0/96`
 * is the matching IPv4 range, so a dual-stack socket's peer address matches IPv4 rules.
 * Zone ids (`fe80::1%eth0`) are not accepted.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface IpAddr {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** Inclusive range of one family. */
export interface IpRange {
  readonly family: IpFamily;
  readonly lo: bigint;
  readonly hi: bigint;
}

const V4_BITS = 32;
const V6_BITS = 128;
const V4_MASK = (1n << 32n) - 1n;

function parseV4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function groupsOf(side: string): string[] {
  if (side === '') return [];
  const parts = side.split(':');
  const last = parts[parts.length - 1];
  if (last !== undefined && last.includes('.')) {
    const v4 = parseV4(last);
    parts.splice(parts.length - 1, 1, ((v4 >> 16n) & 0xffffn).toString(16), (v4 & 0xffffn).toString(16));
  }
  return parts;
}

function parseV6(text: string): bigint {
  const halves = text.split('::');
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length > 1 ? groupsOf(halves[1] ?? '') : [];
  const fill: string[] = new Array<string>(8 - head.length - tail.length).fill('0');
  return [...head, ...fill, ...tail].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Parse without folding IPv4-mapped addresses. */
function parseRaw(text: string): IpAddr | null {
  if (isIPv4(text)) return { family: 4, value: parseV4(text) };
  if (isIPv6(text) && !text.includes('%')) return { family: 6, value: parseV6(text) };
  return null;
}

function isMapped(v6: bigint): boolean {
  return v6 >> 32n === 0xffffn;
}

function fold(a: IpAddr): IpAddr {
  return a.family === 6 && isMapped(a.value) ? { family: 4, value: a.value & V4_MASK } : a;
}

/** A literal IPv4 or IPv6 address (brackets allowed around IPv6), or null. Mapped IPv6 becomes IPv4. */
export function parseIp(text: string): IpAddr | null {
  const t = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const raw = parseRaw(t);
  return raw === null ? null : fold(raw);
}

function foldRange(r: IpRange): IpRange {
  if (r.family === 6 && isMapped(r.lo) && isMapped(r.hi)) {
    return { family: 4, lo: r.lo & V4_MASK, hi: r.hi & V4_MASK };
  }
  return r;
}

/** ATS also takes truncated IPv4 in a CIDR (`0/0`, `10/8`, `172.16/12`): missing octets are 0. */
function parseCidrAddr(text: string): IpAddr | null {
  if (/^\d{1,3}(\.\d{1,3}){0,2}$/.test(text)) return parseRaw([...text.split('.'), '0', '0', '0'].slice(0, 4).join('.'));
  return parseRaw(text);
}

function parseCidr(text: string, slash: number): IpRange | string {
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const addr = parseCidrAddr(addrText);
  if (addr === null) return `invalid address '${addrText}' in '${text}'`;
  const bits = addr.family === 4 ? V4_BITS : V6_BITS;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) {
    return `invalid prefix length '${lenText}' in '${text}' (0-${bits})`;
  }
  const hostBits = BigInt(bits - Number(lenText));
  const hostMask = (1n << hostBits) - 1n;
  const lo = addr.value & ~hostMask;
  return foldRange({ family: addr.family, lo, hi: lo | hostMask });
}

function parseSpan(text: string, dash: number): IpRange | string {
  const aText = text.slice(0, dash).trim();
  const bText = text.slice(dash + 1).trim();
  const a = parseIp(aText);
  if (a === null) return `invalid address '${aText}' in range '${text}'`;
  const b = parseIp(bText);
  if (b === null) return `invalid address '${bText}' in range '${text}'`;
  if (a.family !== b.family) return `range '${text}' mixes IPv4 and IPv6`;
  if (a.value > b.value) return `range '${text}' is reversed (start after end)`;
  return { family: a.family, lo: a.value, hi: b.value };
}

/**
 * Parse an address, a CIDR (`10.0.0.0/8`, `fe80::/10`) or a range (`10.0.0.1-10.0.0.9`).
 * Host bits in a CIDR are ignored. Returns the range, or an error message.
 */
export function parseIpRange(text: string): IpRange | string {
  const t = text.trim();
  const slash = t.indexOf('/');
  if (slash >= 0) return parseCidr(t, slash);
  const dash = t.indexOf('-');
  if (dash >= 0) return parseSpan(t, dash);
  const a = parseIp(t);
  if (a === null) return `invalid address '${t}'`;
  return { family: a.family, lo: a.value, hi: a.value };
}

export function rangeContains(r: IpRange, a: IpAddr): boolean {
  return r.family === a.family && a.value >= r.lo && a.value <= r.hi;
}
