/**
 * sni_router's per-outcome counters, observed in process through the diagnostics channel
 * 'tsproxy:sni_router:outcome', with the host running in this process on a real socket.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { loadConfig } from '../../host/config/load.js';
import { Host } from '../../host/core/host.js';
import { diags } from '../../host/diags.js';
import { OUTCOME_CHANNEL } from '../../plugins/sni_router/index.js';

interface Outcome {
  vconnId: number;
  sni: string | null;
  action: string;
  target?: { host: string; port: number };
  reason?: string;
  rule: string;
  stats: Record<string, number>;
}

test('one counter per outcome, published per connection', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sni-outcomes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=proxy.test', '-keyout', join(dir, 'proxy.key'), '-out', join(dir, 'proxy.pem')], { stdio: 'ignore' });
  } catch {
    t.skip('openssl not found (needed for the proxy certificate)');
    return;
  }
  // A TCP sink standing in for every backend: tunnels and forwards only need something to dial.
  const sink = net.createServer((s) => {
    s.on('error', () => {});
    s.resume();
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  t.after(() => sink.close());
  const sinkPort = (sink.address() as AddressInfo).port;
  writeFileSync(join(dir, 'records.yaml'), 'records:\n  http:\n    server_ports: 0:ssl\n  ssl:\n    server:\n      cert:\n        path: .\n      private_key:\n        path: .\n');
  writeFileSync(join(dir, 'ssl_multicert.config'), 'dest_ip=* ssl_cert_name=proxy.pem ssl_key_name=proxy.key\n');
  writeFileSync(join(dir, 'plugin.config'), 'sni_router.so\n');
  writeFileSync(join(dir, 'sni.yaml'), `sni:
  - fqdn: tunnel.test
    tunnel_route: 127.0.0.1:${sinkPort}
  - fqdn: fwd.test
    forward_route: 127.0.0.1:${sinkPort}
  - fqdn: denied.test
    ip_allow: 192.0.2.0/24
    tunnel_route: 127.0.0.1:${sinkPort}
`);

  const lines: string[] = [];
  const prevSink = diags.setSink((l) => void lines.push(l));
  diags.configure(true, 'sni_router|ssl_sni');
  t.after(() => {
    diags.setSink(prevSink);
    diags.configure(false, '');
  });
  const { config, diagnostics } = loadConfig(dir);
  assert.ok(config, diagnostics.map((d) => d.message).join('\n'));
  const host = new Host(config);
  await host.loadPlugins();
  const [bound] = await host.listen();
  t.after(() => host.stop(0));

  const outcomes: Outcome[] = [];
  const onOutcome = (m: unknown): void => void outcomes.push(m as Outcome);
  subscribe(OUTCOME_CHANNEL, onOutcome);
  t.after(() => unsubscribe(OUTCOME_CHANNEL, onOutcome));

  const hello = async (servername: string): Promise<void> => {
    const n = outcomes.length;
    const c = tls.connect({ host: '127.0.0.1', port: bound!.port, servername, rejectUnauthorized: false });
    c.on('error', () => {});
    const deadline = Date.now() + 5000;
    while (outcomes.length === n) {
      if (Date.now() > deadline) throw new Error(`no outcome for ${servername}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    c.destroy();
  };
  for (const name of ['tunnel.test', 'tunnel.test', 'fwd.test', 'denied.test', 'other.test']) await hello(name);

  assert.deepEqual(
    outcomes.map((o) => [o.sni, o.action, o.rule.replace(dir, 'DIR')]),
    [
      ['tunnel.test', 'tunnel', 'DIR/sni.yaml:2'],
      ['tunnel.test', 'tunnel', 'DIR/sni.yaml:2'],
      ['fwd.test', 'forward', 'DIR/sni.yaml:4'],
      ['denied.test', 'reject', 'DIR/sni.yaml:6'],
      ['other.test', 'none', 'no rule'],
    ],
  );
  assert.deepEqual(outcomes.at(-1)!.stats, { tunnel: 2, forward: 1, partial_blind: 0, reject: 1, none: 1 });
  assert.deepEqual(outcomes[0]!.target, { host: '127.0.0.1', port: sinkPort, dynamicPort: false });
  assert.equal(outcomes[3]!.reason, 'client 127.0.0.1 not in ip_allow');
  assert.ok(lines.some((l) => l.includes(`(ssl_sni) Destination now is [127.0.0.1:${sinkPort}], fqdn [tunnel.test]`)), lines.join('\n'));
  assert.ok(lines.some((l) => /\(sni_router\) vconn \d+ fqdn \[denied\.test\] port \d+ from 127\.0\.0\.1: reject/.test(l)));
});
