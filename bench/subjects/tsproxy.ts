/**
 * tsproxy itself: `node <main.js> --config-dir DIR`, configured with ATS-style files, ready when it
 * prints `NOTE: listening on 127.0.0.1:PORT (http), ...` on stderr. A missing main.js, an early
 * exit or no NOTE line in time is a SkipError with the reason (tsproxy is still being written).
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { scratchDir, type BenchContext } from '../context.js';
import type { Pki } from '../pki.js';
import { BRIDGE_INGRESS_HOSTS, BRIDGE_PEER_HOST, BRIDGE_PEER_HOSTS, BRIDGE_SERVICE_REGEX } from './ats.js';
import { SkipError, type SniRoute, type Started } from './types.js';

const START_TIMEOUT_MS = 15_000;
const NOTE_RE = /NOTE: listening on (.*)$/;
const LISTENER_RE = /([\d.]+|\[[0-9a-fA-F:]+\]):(\d+) \((\w+)\)/g;

export interface Listener {
  readonly host: string;
  readonly port: number;
}

export interface TsproxyStarted extends Started {
  readonly http: Listener | null;
  readonly ssl: Listener | null;
}

/** File name -> content for a config dir. */
export type ConfigFiles = Readonly<Record<string, string>>;

/** Parse the NOTE line's listener list; null when the line is not the NOTE. */
function parseListening(line: string): { http: Listener | null; ssl: Listener | null } | null {
  const m = NOTE_RE.exec(line);
  if (m === null) return null;
  let http: Listener | null = null;
  let ssl: Listener | null = null;
  for (const l of (m[1] ?? '').matchAll(LISTENER_RE)) {
    const listener = { host: (l[1] ?? '').replace(/^\[|\]$/g, ''), port: Number(l[2]) };
    if (l[3] === 'ssl') ssl ??= listener;
    else http ??= listener;
  }
  return { http, ssl };
}

/** Start one tsproxy process on a fresh config dir holding `files(dir)`. */
async function startTsproxy(ctx: BenchContext, name: string, files: (dir: string) => ConfigFiles): Promise<TsproxyStarted> {
  const main = ctx.opts.tsproxyMain;
  if (!existsSync(main)) throw new SkipError(`${main} not found: tsproxy is not built yet (its host CLI is missing)`);
  const dir = await scratchDir(ctx, name);
  for (const [file, text] of Object.entries(files(dir))) await writeFile(join(dir, file), text);
  const p = ctx.reg.spawn(name, process.execPath, [main, '--config-dir', dir]);
  try {
    const l = await p.firstLine((line, stream) => (stream === 'stderr' ? parseListening(line) : null), START_TIMEOUT_MS);
    return { procs: [{ role: name, pid: p.pid }], http: l.http, ssl: l.ssl, stop: () => ctx.reg.stop(p) };
  } catch (err) {
    await ctx.reg.stop(p);
    throw new SkipError(`tsproxy (${name}) failed to start: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The listener a role needs, or a SkipError naming what the NOTE line lacked. */
function needListener(l: Listener | null, what: string): Listener {
  if (l === null) throw new SkipError(`tsproxy printed no ${what} listener in its NOTE line`);
  return l;
}

export interface TsproxyListening extends Started {
  readonly entry: Listener;
}

async function single(ctx: BenchContext, name: string, kind: 'http' | 'ssl', files: (dir: string) => ConfigFiles): Promise<TsproxyListening> {
  const t = await startTsproxy(ctx, name, files);
  try {
    return { procs: t.procs, entry: needListener(t[kind], kind), stop: t.stop };
  } catch (err) {
    await t.stop();
    throw err;
  }
}

/** One tsproxy as a plain CONNECT proxy. */
export function startTsproxyConnect(ctx: BenchContext): Promise<TsproxyListening> {
  return single(ctx, 'tsproxy', 'http', () => connectProxyFiles());
}

/** One tsproxy as an SNI router (sni_router.so + sni.yaml tunnel_route). */
export function startTsproxySni(ctx: BenchContext, routes: readonly SniRoute[]): Promise<TsproxyListening> {
  return single(ctx, 'tsproxy', 'ssl', () => sniRouterFiles(ctx.pki, routes));
}

/** Two tsproxy: the peer (ssl, client certificates required), then the tls_bridge ingress pointing at it. */
export async function startTsproxyBridge(ctx: BenchContext): Promise<TsproxyListening> {
  const peer = await single(ctx, 'tsproxy-peer', 'ssl', (dir) => bridgePeerFiles(ctx.pki, dir));
  try {
    const ingress = await single(ctx, 'tsproxy-ingress', 'http', (dir) => bridgeIngressFiles(ctx.pki, dir, peer.entry.port));
    return {
      procs: [
        { role: 'in', pid: ingress.procs[0]?.pid ?? 0 },
        { role: 'out', pid: peer.procs[0]?.pid ?? 0 },
      ],
      entry: ingress.entry,
      stop: async () => {
        await Promise.all([ingress.stop(), peer.stop()]);
      },
    };
  } catch (err) {
    await peer.stop();
    throw err;
  }
}

// ---------------------------------------------------------------- config files

/** records.yaml from dotted names (without `proxy.config.`), nested as ATS 10 does. */
function recordsYaml(flat: Readonly<Record<string, string | number>>): string {
  const root: Record<string, unknown> = {};
  for (const [dotted, value] of Object.entries(flat)) {
    const parts = dotted.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const next = (node[part] ??= {}) as Record<string, unknown>;
      node = next;
    }
    node[parts[parts.length - 1] as string] = value;
  }
  return stringify({ records: root });
}

const IP_ALLOW =
  'ip_allow:\n' +
  '  - apply: in\n    ip_addrs: 127.0.0.1\n    action: set_allow\n    methods: ALL\n' +
  '  - apply: out\n    ip_addrs: 127.0.0.1\n    action: set_allow\n    methods: ALL\n';

/** One process, no workers: every peer here runs one thread (HAProxy nbthread 1, one ATS event thread...). */
const BASE_RECORDS = {
  'exec_thread.autoconfig.enabled': 0,
  'exec_thread.limit': 1,
  'http.connect_ports': '1-65535',
  'http.cache.http': 0,
  'url_remap.remap_required': 0,
  'diags.debug.enabled': 0,
} as const;

/** A plain CONNECT proxy. */
function connectProxyFiles(): ConfigFiles {
  return { 'records.yaml': recordsYaml({ 'http.server_ports': '0', ...BASE_RECORDS }), 'ip_allow.yaml': IP_ALLOW };
}


/** The tls_bridge ingress: plain CONNECT in, mutual TLS to the peer at peer.ats:peerPort. */
function bridgeIngressFiles(pki: Pki, dir: string, peerPort: number): ConfigFiles {
  return {
    'records.yaml': recordsYaml({
      'http.server_ports': '0',
      ...BASE_RECORDS,
      'hostdb.host_file.path': join(dir, 'hosts'),
      'ssl.client.verify.server.policy': 'ENFORCED',
      'ssl.client.CA.cert.path': pki.dir,
      'ssl.client.CA.cert.filename': 'ca.pem',
      'ssl.client.cert.path': pki.dir,
      'ssl.client.cert.filename': 'client.pem',
      'ssl.client.private_key.path': pki.dir,
      'ssl.client.private_key.filename': 'client.key',
    }),
    'plugin.config': `tls_bridge.so ${BRIDGE_SERVICE_REGEX} ${BRIDGE_PEER_HOST}:${peerPort}\n`,
    'ip_allow.yaml': IP_ALLOW,
    hosts: BRIDGE_INGRESS_HOSTS,
  };
}

/** The tls_bridge peer: an ssl port that requires client certificates, CONNECT on to the service. */
function bridgePeerFiles(pki: Pki, dir: string): ConfigFiles {
  return {
    'records.yaml': recordsYaml({
      'http.server_ports': '0:ssl',
      ...BASE_RECORDS,
      'hostdb.host_file.path': join(dir, 'hosts'),
      'ssl.client.certification_level': 2,
      'ssl.CA.cert.path': pki.dir,
      'ssl.CA.cert.filename': 'ca.pem',
      'ssl.server.cert.path': pki.dir,
      'ssl.server.private_key.path': pki.dir,
    }),
    'ssl_multicert.config': 'dest_ip=* ssl_cert_name=peer.pem ssl_key_name=peer.key\n',
    'ip_allow.yaml': IP_ALLOW,
    hosts: BRIDGE_PEER_HOSTS,
  };
}

/** The SNI router: an ssl port, sni_router.so, sni.yaml tunnel_route per name. */
function sniRouterFiles(pki: Pki, routes: readonly SniRoute[]): ConfigFiles {
  const items = routes.flatMap((r) => r.names.map((n) => `  - fqdn: ${n}\n    tunnel_route: 127.0.0.1:${r.port}\n`));
  return {
    'records.yaml': recordsYaml({
      'http.server_ports': '0:ssl',
      ...BASE_RECORDS,
      'ssl.server.cert.path': pki.dir,
      'ssl.server.private_key.path': pki.dir,
    }),
    'plugin.config': 'sni_router.so\n',
    'sni.yaml': `sni:\n${items.join('')}`,
    'ssl_multicert.config': 'dest_ip=* ssl_cert_name=server.pem ssl_key_name=server.key\n',
    'ip_allow.yaml': IP_ALLOW,
  };
}
