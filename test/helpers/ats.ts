/**
 * A real Apache Traffic Server (Debian's 9.2 `traffic_server`) as a standalone, loopback-only test peer, run from
 * a sandbox runroot so /etc/trafficserver is never touched (see ats.md section 8).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { has, which } from './tools.js';

const SYSTEM_CONFIG_DIR = '/etc/trafficserver';
const DEFAULT_START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5000;
const POLL_MS = 25;
const HOST_FILE_LOADED = /\(hostdb\) Loading host file/;

export type AtsPortKind = 'http' | 'ssl' | 'blind';

export interface AtsTls {
  /** Server certificate and key (PEM file paths), offered on `ssl` ports for every name. */
  cert: string;
  key: string;
  /** CA (PEM file) that signs acceptable client certificates. */
  clientCa?: string;
  /** proxy.config.ssl.client.certification_level: 0 none, 1 optional, 2 required. */
  certificationLevel?: 0 | 1 | 2;
}

export interface AtsOptions {
  /** Extra records.config lines (`CONFIG proxy.config.x TYPE value`); they override the harness's own. */
  records?: string;
  /** One free loopback port per entry, in this order (default `['http']`). */
  listen?: readonly AtsPortKind[];
  tls?: AtsTls;
  /** proxy.config.http.connect_ports (ATS's default is 443 only). */
  connectPorts?: readonly number[];
  /** proxy.config.diags.debug.tags (enables debug output, which goes to ATS's stdout). Use this, not `records`. */
  debugTags?: string;
  /** File contents; each is empty unless given (sni.yaml is `sni: []`). */
  sslMulticert?: string;
  remap?: string;
  pluginConfig?: string;
  sniYaml?: string;
  /**
   * Written to etc/hosts and used as proxy.config.hostdb.host_file.path; startAts then also waits (about 1 s)
   * until HostDB has loaded it, which it shows through the `hostdb` debug tag (added to the tags).
   */
  hosts?: string;
  /** Other files under the sandbox's etc/, by relative path. */
  files?: Record<string, string>;
  /** How long to wait until every port accepts connections (default 15 s). */
  timeoutMs?: number;
  /** When given, `t.after` stops ATS. */
  t?: TestContext;
}

export interface Ats {
  /** The sandbox (etc/ log/ run/ var/ cache/ runroot.yaml); removed by stop(). */
  dir: string;
  pid: number;
  /** The ports, in the order of `listen`. */
  ports: number[];
  /** ports[0]. */
  port: number;
  /** Everything ATS printed (stdout then stderr) plus log/diags.log. */
  logs(): string;
  /** SIGTERM, SIGKILL after 5 s, then removes the sandbox. Safe to call twice. */
  stop(): Promise<void>;
}

/** Whether Debian's traffic_server and its default config are installed. */
export function hasAts(): boolean {
  return has('traffic_server') && existsSync(join(SYSTEM_CONFIG_DIR, 'records.config'));
}

/** `n` distinct free loopback ports: bound to port 0 all at once, then released (ATS cannot bind port 0). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function runrootYaml(dir: string): string {
  const entries: [string, string][] = [
    ['prefix', dir],
    ['exec_prefix', '/usr'],
    ['bindir', '/usr/bin'],
    ['sbindir', '/usr/sbin'],
    ['sysconfdir', join(dir, 'etc')],
    ['datadir', join(dir, 'var')],
    ['includedir', '/usr/include'],
    ['libdir', '/usr/lib/trafficserver'],
    ['libexecdir', '/usr/lib/trafficserver/modules'],
    ['localstatedir', join(dir, 'var')],
    ['runtimedir', join(dir, 'run')],
    ['logdir', join(dir, 'log')],
    ['cachedir', join(dir, 'cache')],
  ];
  return entries.map(([k, v]) => `${k}: ${v}\n`).join('');
}

const RECORD_NAME = /^\s*(?:CONFIG|LOCAL)\s+(\S+)\s/;

function recordName(line: string): string | null {
  return RECORD_NAME.exec(line)?.[1] ?? null;
}

/** The harness's records: a loopback peer that resolves only through the hosts file and writes no access logs. */
function baseRecords(dir: string, ports: readonly number[], opts: AtsOptions, deadDnsPort: number): string[] {
  const kinds = opts.listen ?? ['http'];
  const descriptors = kinds.map((k, i) => `${ports[i]}${k === 'http' ? '' : `:${k}`}:ip-in=127.0.0.1`);
  const lines = [
    'CONFIG proxy.config.admin.user_id STRING #-1',
    'CONFIG proxy.config.http.cache.http INT 0',
    'CONFIG proxy.config.url_remap.remap_required INT 0',
    `CONFIG proxy.config.hostdb.host_file.path STRING ${join(dir, 'etc', 'hosts')}`,
    'CONFIG proxy.config.dns.resolv_conf STRING NULL',
    `CONFIG proxy.config.dns.nameservers STRING 127.0.0.1:${deadDnsPort}`,
    // A name in neither the hosts file nor DNS: `500 Cannot find server.` after 2 s, not 30 s.
    'CONFIG proxy.config.hostdb.lookup_timeout INT 2',
    'CONFIG proxy.config.log.logging_enabled INT 0',
    `CONFIG proxy.config.http.server_ports STRING ${descriptors.join(' ')}`,
  ];
  if (opts.connectPorts) lines.push(`CONFIG proxy.config.http.connect_ports STRING ${opts.connectPorts.join(' ')}`);
  // HostDB reads the hosts file on its first background tick, about 1 s after start, and names asked before that
  // go to the (dead) DNS: the `hostdb` tag shows when the file is in, and startAts waits for it.
  const tags = [opts.debugTags, opts.hosts !== undefined ? 'hostdb' : undefined].filter((x) => x !== undefined && x !== '');
  if (tags.length > 0) {
    lines.push('CONFIG proxy.config.diags.debug.enabled INT 1', `CONFIG proxy.config.diags.debug.tags STRING ${tags.join('|')}`);
  }
  const tls = opts.tls;
  if (tls) {
    lines.push(
      `CONFIG proxy.config.ssl.server.cert.path STRING ${dirname(tls.cert)}`,
      `CONFIG proxy.config.ssl.server.private_key.path STRING ${dirname(tls.key)}`,
      `CONFIG proxy.config.ssl.client.certification_level INT ${tls.certificationLevel ?? 0}`,
    );
    if (tls.clientCa) {
      lines.push(
        `CONFIG proxy.config.ssl.CA.cert.path STRING ${dirname(tls.clientCa)}`,
        `CONFIG proxy.config.ssl.CA.cert.filename STRING ${basename(tls.clientCa)}`,
      );
    }
  }
  return lines;
}

/** Debian's records.config, then the harness's records, then the caller's; each name kept once, last wins. */
function recordsConfig(system: string, base: readonly string[], extra: string): string {
  const extraLines = extra.split('\n').filter((l) => l.trim() !== '');
  const overridden = new Set([...base, ...extraLines].map(recordName).filter((n): n is string => n !== null));
  const baseKept = base.filter((l) => !extraLines.some((e) => recordName(e) === recordName(l)));
  const systemKept = system.split('\n').filter((l) => {
    const n = recordName(l);
    return n === null || !overridden.has(n);
  });
  return [...systemKept, '# tsproxy test harness', ...baseKept, ...extraLines, ''].join('\n');
}

/** Killed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Starts traffic_server in a fresh sandbox and resolves once every port accepts connections. */
export async function startAts(opts: AtsOptions = {}): Promise<Ats> {
  const bin = which('traffic_server');
  if (!bin || !hasAts()) throw new Error('traffic_server is not installed (apt-get install trafficserver)');
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-ats-'));
  for (const sub of ['etc', 'log', 'run', 'var', 'cache']) mkdirSync(join(dir, sub));
  cpSync(`${SYSTEM_CONFIG_DIR}/`, join(dir, 'etc'), { recursive: true });
  writeFileSync(join(dir, 'runroot.yaml'), runrootYaml(dir));

  const kinds = opts.listen ?? ['http'];
  const [deadDnsPort, ...ports] = await freePorts(kinds.length + 1);
  const etc = (name: string): string => join(dir, 'etc', name);
  const tlsMulticert = opts.tls ? `dest_ip=* ssl_cert_name=${basename(opts.tls.cert)} ssl_key_name=${basename(opts.tls.key)}\n` : '';
  const files: Record<string, string> = {
    'storage.config': '',
    'remap.config': opts.remap ?? '',
    'plugin.config': opts.pluginConfig ?? '',
    'ssl_multicert.config': opts.sslMulticert ?? tlsMulticert,
    'sni.yaml': opts.sniYaml ?? 'sni: []\n',
    hosts: opts.hosts ?? '',
    'records.config': recordsConfig(
      readFileSync(etc('records.config'), 'utf8'),
      baseRecords(dir, ports, opts, deadDnsPort ?? 9),
      opts.records ?? '',
    ),
    ...opts.files,
  };
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(etc(name)), { recursive: true });
    writeFileSync(etc(name), text);
  }

  const child = spawn(bin, [], { cwd: dir, env: { ...process.env, TS_RUNROOT: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  let exitedWith: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      exitedWith = `code ${code}, signal ${signal}`;
      resolve();
    });
  });
  child.on('error', (e) => err.push(Buffer.from(`spawn error: ${e.message}\n`)));

  const logs = (): string => {
    const diags = join(dir, 'log', 'diags.log');
    const diagsText = existsSync(diags) ? readFileSync(diags, 'utf8') : '';
    return `--- stdout ---\n${Buffer.concat(out).toString()}--- stderr ---\n${Buffer.concat(err).toString()}--- diags.log ---\n${diagsText}`;
  };
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitedWith === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  if (opts.t) opts.t.after(() => stop());

  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  try {
    for (const port of ports) {
      while (!(await accepts(port))) {
        if (exitedWith !== null) throw new Error(`traffic_server exited (${exitedWith}) before listening on ${port}`);
        if (Date.now() > deadline) throw new Error(`traffic_server did not listen on ${port} in time`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
    // Debug records given in `records` replace the `hostdb` tag: then nothing shows the load, so do not wait.
    const waitForHosts = opts.hosts !== undefined && !/proxy\.config\.diags\.debug\.(tags|enabled)\s/.test(opts.records ?? '');
    while (waitForHosts && !HOST_FILE_LOADED.test(logs())) {
      if (exitedWith !== null) throw new Error(`traffic_server exited (${exitedWith}) before loading its hosts file`);
      if (Date.now() > deadline) throw new Error('traffic_server did not load its hosts file in time');
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } catch (e) {
    const text = logs();
    await stop();
    throw new Error(`${(e as Error).message}\n${text}`, { cause: e });
  }
  return { dir, pid: child.pid ?? -1, ports, port: ports[0] ?? 0, logs, stop };
}
