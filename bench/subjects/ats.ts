/**
 * Debian's Apache Traffic Server 9.2 as a peer, one sandboxed `traffic_server` per instance
 * (no traffic_manager; TS_RUNROOT points at a runroot.yaml in the sandbox; legacy records.config).
 * One event thread (exec_thread.limit 1) to match one Node process; cache, logging and debug off.
 *   startAtsConnect: a plain CONNECT proxy (no plugin).
 *   startAtsBridge:  ingress with tls_bridge.so -> mutual TLS -> peer ATS on an ssl port.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir, type BenchContext } from '../context.js';
import { freePort, freePorts } from '../ports.js';
import { launchListening } from './launch.js';
import { orSkip, requireBinary, SkipError, type Listening } from './types.js';

const ATS_ETC = '/etc/trafficserver';
export const ATS_MODULES = '/usr/lib/trafficserver/modules';
const START_TIMEOUT_MS = 20_000;
/** The service names the bridge tunnels (the plugin's regex) and the hosts file entries. */
export const BRIDGE_SERVICE_HOST = 'sink.service.test';
export const BRIDGE_SERVICE_REGEX = '.*[.]service[.]test';
export const BRIDGE_PEER_HOST = 'peer.ats';

/** The peer reaches the service on loopback. */
export const BRIDGE_PEER_HOSTS = `127.0.0.1 ${BRIDGE_SERVICE_HOST}\n`;
/**
 * The ingress reaches the peer; the service name points at 127.0.0.2 where nothing listens, so a
 * bridge that did not engage fails loudly instead of tunnelling straight to the sink (and no name
 * ever goes to a real resolver).
 */
export const BRIDGE_INGRESS_HOSTS = `127.0.0.1 ${BRIDGE_PEER_HOST}\n127.0.0.2 ${BRIDGE_SERVICE_HOST}\n`;

type RecordValue = readonly [type: 'INT' | 'STRING', value: string | number];

interface AtsInstance {
  readonly name: string;
  /** The hosts file (proxy.config.hostdb.host_file.path). */
  readonly hosts: string;
  readonly serverPorts: string;
  readonly records: Readonly<Record<string, RecordValue>>;
  readonly pluginConfig: string;
  readonly sslMulticert: string;
}

function runroot(dir: string): string {
  const d = (k: string, v: string): string => `${k}: ${v}\n`;
  return (
    d('prefix', dir) + d('exec_prefix', '/usr') + d('bindir', '/usr/bin') + d('sbindir', '/usr/sbin') +
    d('sysconfdir', join(dir, 'etc')) + d('datadir', join(dir, 'var')) + d('includedir', '/usr/include') +
    d('libdir', '/usr/lib/trafficserver') + d('libexecdir', ATS_MODULES) + d('localstatedir', join(dir, 'var')) +
    d('runtimedir', join(dir, 'run')) + d('logdir', join(dir, 'log')) + d('cachedir', join(dir, 'cache'))
  );
}

async function startAts(ctx: BenchContext, inst: AtsInstance, port: number): Promise<Listening> {
  const bin = requireBinary(['traffic_server'], 'trafficserver');
  if (!existsSync(ATS_ETC)) throw new SkipError(`${ATS_ETC} not found (Debian package trafficserver)`);
  const dir = await scratchDir(ctx, inst.name);
  for (const sub of ['etc', 'log', 'run', 'var', 'cache']) await mkdir(join(dir, sub), { recursive: true });
  await cp(ATS_ETC, join(dir, 'etc'), { recursive: true });
  const etc = join(dir, 'etc');
  const hosts = join(dir, 'hosts');
  await writeFile(hosts, inst.hosts);
  const deadDns = await freePort();
  const records: Record<string, RecordValue> = {
    'proxy.config.admin.user_id': ['STRING', '#-1'],
    'proxy.config.http.server_ports': ['STRING', inst.serverPorts],
    'proxy.config.http.connect_ports': ['STRING', '1-65535'],
    'proxy.config.http.cache.http': ['INT', 0],
    'proxy.config.url_remap.remap_required': ['INT', 0],
    'proxy.config.hostdb.host_file.path': ['STRING', hosts],
    'proxy.config.dns.resolv_conf': ['STRING', 'NULL'],
    'proxy.config.dns.nameservers': ['STRING', `127.0.0.1:${deadDns}`],
    'proxy.config.log.logging_enabled': ['INT', 0],
    'proxy.config.diags.debug.enabled': ['INT', 0],
    'proxy.config.exec_thread.autoconfig': ['INT', 0],
    'proxy.config.exec_thread.limit': ['INT', 1],
    ...inst.records,
  };
  const text = Object.entries(records)
    .map(([k, [t, v]]) => `CONFIG ${k} ${t} ${String(v)}`)
    .join('\n');
  await writeFile(join(etc, 'records.config'), text + '\n');
  await writeFile(join(etc, 'storage.config'), '');
  await writeFile(join(etc, 'remap.config'), '');
  await writeFile(join(etc, 'plugin.config'), inst.pluginConfig);
  await writeFile(join(etc, 'ssl_multicert.config'), inst.sslMulticert);
  await writeFile(join(etc, 'sni.yaml'), 'sni: []\n');
  await writeFile(join(dir, 'runroot.yaml'), runroot(dir));
  const env = { ...process.env, TS_RUNROOT: dir };
  const p = await launchListening(ctx, inst.name, bin, [], [port], START_TIMEOUT_MS, { cwd: dir, env });
  return { procs: [{ role: inst.name, pid: p.pid }], port, stop: () => ctx.reg.stop(p) };
}

/** A plain CONNECT proxy. */
export async function startAtsConnect(ctx: BenchContext): Promise<Listening> {
  return orSkip('trafficserver', async () => {
    const port = await freePort();
    return startAts(
      ctx,
      { name: 'ats', hosts: '', serverPorts: `${port}:ip-in=127.0.0.1`, records: {}, pluginConfig: '', sslMulticert: '' },
      port,
    );
  });
}

/** Where tls_bridge.so is: --ats-tls-bridge, TSPROXY_BENCH_ATS_TLS_BRIDGE, or ATS's module dir. */
export function findTlsBridge(flag: string | null): string {
  const candidates = [flag, process.env.TSPROXY_BENCH_ATS_TLS_BRIDGE ?? null, join(ATS_MODULES, 'tls_bridge.so')];
  for (const c of candidates) if (c !== null && c !== '' && existsSync(c)) return c;
  const given = candidates.slice(0, 2).filter((c): c is string => c !== null && c !== '');
  throw new SkipError(
    `no tls_bridge.so: ${ATS_MODULES}/ lacks it (Debian's trafficserver does not ship this plugin)` +
      `${given.length > 0 ? `, nor is it at ${given.join(', ')}` : ''}; pass --ats-tls-bridge PATH or TSPROXY_BENCH_ATS_TLS_BRIDGE`,
  );
}

/** Two ATS: ingress (tls_bridge.so routes *.service.test to the peer) and peer (ssl, client certs required). */
export async function startAtsBridge(ctx: BenchContext, plugin: string): Promise<Listening> {
  requireBinary(['traffic_server'], 'trafficserver');
  return orSkip('trafficserver tls_bridge pair', async () => {
    const { pki } = ctx;
    const [ingressPort, peerPort] = (await freePorts(2)) as [number, number];
    const peer = await startAts(
      ctx,
      {
        name: 'ats-peer',
        hosts: BRIDGE_PEER_HOSTS,
        serverPorts: `${peerPort}:ssl:ip-in=127.0.0.1`,
        records: {
          'proxy.config.ssl.client.certification_level': ['INT', 2],
          'proxy.config.ssl.CA.cert.path': ['STRING', pki.dir],
          'proxy.config.ssl.CA.cert.filename': ['STRING', 'ca.pem'],
          'proxy.config.ssl.server.cert.path': ['STRING', pki.dir],
          'proxy.config.ssl.server.private_key.path': ['STRING', pki.dir],
        },
        pluginConfig: '',
        sslMulticert: 'dest_ip=* ssl_cert_name=peer.pem ssl_key_name=peer.key\n',
      },
      peerPort,
    );
    try {
      const ingress = await startAts(
        ctx,
        {
          name: 'ats-ingress',
          hosts: BRIDGE_INGRESS_HOSTS,
          serverPorts: `${ingressPort}:ip-in=127.0.0.1`,
          records: {
            'proxy.config.ssl.client.verify.server.policy': ['STRING', 'ENFORCED'],
            'proxy.config.ssl.client.CA.cert.path': ['STRING', pki.dir],
            'proxy.config.ssl.client.CA.cert.filename': ['STRING', 'ca.pem'],
            'proxy.config.ssl.client.cert.path': ['STRING', pki.dir],
            'proxy.config.ssl.client.cert.filename': ['STRING', 'client.pem'],
            'proxy.config.ssl.client.private_key.path': ['STRING', pki.dir],
            'proxy.config.ssl.client.private_key.filename': ['STRING', 'client.key'],
          },
          pluginConfig: `${plugin} ${BRIDGE_SERVICE_REGEX} ${BRIDGE_PEER_HOST}:${peerPort}\n`,
          sslMulticert: '',
        },
        ingressPort,
      );
      return {
        procs: [
          { role: 'in', pid: ingress.procs[0]?.pid ?? 0 },
          { role: 'out', pid: peer.procs[0]?.pid ?? 0 },
        ],
        port: ingressPort,
        stop: async () => {
          await Promise.all([ingress.stop(), peer.stop()]);
        },
      };
    } catch (err) {
      await peer.stop();
      throw err;
    }
  });
}
