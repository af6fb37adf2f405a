import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDiagnostic, loadConfig } from '../../../host/config/load.js';

/** A fresh config dir holding `files`, removed after the test. */
function configDir(t: TestContext, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-load-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const RECORDS_WITH_HOSTS = 'records:\n  http:\n    connect_ports: 443 4443\n  hostdb:\n    host_file:\n      path: hosts\n';

test('loadConfig: an error in every file is reported in one run', { timeout: 10_000 }, (t) => {
  const dir = configDir(t, {
    'records.yaml': 'records:\n  url_remap:\n    remap_required: abc\n  hostdb:\n    host_file:\n      path: hosts\n',
    'plugin.config': 'ok.so\nx.so "unterminated\n',
    'remap.config': 'map http://a/ http://b/\nbogus a b\n.include more.config\n',
    'more.config': 'map http://c/\n',
    'ip_allow.yaml': 'ip_allow:\n  - apply: in\n    ip_addrs: 1.2.3.4\n    action: allow\n    colour: red\n',
    'ssl_multicert.config': 'ssl_cert_name=a.pem colour=x\n',
    hosts: '127.0.0.1 localhost\nnot-an-ip name\n',
  });
  const { config, partial, diagnostics } = loadConfig(dir, {});
  assert.equal(config, null);
  assert.deepEqual(diagnostics.map(formatDiagnostic), [
    "records.yaml:3:21: proxy.config.url_remap.remap_required must be an integer, got 'abc'",
    'plugin.config:2:6: unterminated quote',
    "remap.config:2:1: unknown directive 'bogus'",
    "more.config:1:14: missing target URL after 'http://c/'",
    "ip_allow.yaml:5:5: unknown key 'colour' (expected apply, ip_addrs, action, methods)",
    "ssl_multicert.config:1:21: unknown key 'colour'",
    "hosts:2:1: invalid address 'not-an-ip'",
  ]);
  assert.deepEqual(
    partial.plugins.map((p) => p.name),
    ['ok.so'],
    'the good plugin lines are still available for verification',
  );
  assert.equal(partial.configDir, dir);
});

test('loadConfig: a valid directory gives one Config', { timeout: 10_000 }, (t) => {
  const dir = configDir(t, {
    'records.yaml': RECORDS_WITH_HOSTS,
    'plugin.config': '# plugins\ntls_bridge.so .*[.]service[.]com peer.ats:4443 "$proxy.config.http.connect_ports"\n',
    'remap.config': 'map https://peer.ats:4443 https://peer.ats:4443\n',
    'ip_allow.yaml': 'ip_allow:\n  - apply: in\n    ip_addrs: 127.0.0.1\n    action: set_allow\n',
    'ssl_multicert.config': 'dest_ip=* ssl_cert_name=server.pem\n',
    hosts: '127.0.0.1 peer.ats\n',
  });
  const { config, diagnostics } = loadConfig(dir, {});
  assert.deepEqual(diagnostics, []);
  assert.ok(config);
  assert.equal(config.configDir, dir);
  assert.deepEqual(config.plugins, [
    { file: 'plugin.config', line: 2, name: 'tls_bridge.so', args: ['.*[.]service[.]com', 'peer.ats:4443', '443 4443'], cols: [1, 15, 34, 48] },
  ]);
  const hit = config.remap.lookup({ scheme: 'https', host: 'peer.ats', port: 4443, path: '/', recvPort: 8080, method: 'CONNECT' });
  assert.equal(hit?.kind, 'map');
  assert.equal(config.ipAllow.fromFile, true);
  assert.deepEqual(config.ipAllow.acceptIn('127.0.0.1'), { allow: true, by: 'ip_allow.yaml:2' });
  assert.deepEqual(config.sslMulticert, [
    { destIp: '*', certFile: join(config.records.ssl.serverCertDir, 'server.pem'), keyFile: join(config.records.ssl.serverCertDir, 'server.pem'), file: 'ssl_multicert.config', line: 1 },
  ]);
  assert.deepEqual(config.hosts.lookup('PEER.ATS'), ['127.0.0.1']);
});

test('loadConfig: an empty directory uses every default', { timeout: 10_000 }, (t) => {
  const dir = configDir(t);
  const { config, diagnostics } = loadConfig(dir, {});
  assert.deepEqual(diagnostics, []);
  assert.ok(config);
  assert.deepEqual(config.plugins, []);
  assert.deepEqual(config.remap.rules, []);
  assert.equal(config.ipAllow.fromFile, false);
  assert.equal(config.ipAllow.acceptIn('::1').allow, true);
  assert.equal(config.ipAllow.acceptIn('10.0.0.1').allow, false);
  assert.equal(config.ipAllow.checkOut('169.254.169.254', 'CONNECT').allow, false);
  assert.deepEqual(config.sslMulticert, []);
  assert.deepEqual(config.hosts.lookup('localhost'), []);
});

test('loadConfig: warnings alone keep the Config', { timeout: 10_000 }, (t) => {
  const dir = configDir(t, { 'remap.config': 'map http://a/ http://b/ @plugin=x.so\n' });
  const { config, diagnostics } = loadConfig(dir, {});
  assert.ok(config);
  assert.deepEqual(diagnostics.map(formatDiagnostic), [
    "remap.config:1:25: warning: remap plugins are not supported yet; '@plugin' ignored (the rule maps without it)",
  ]);
});

test('loadConfig: a missing hosts file is an error at the record that names it', { timeout: 10_000 }, (t) => {
  const dir = configDir(t, { 'records.yaml': RECORDS_WITH_HOSTS });
  const fromFile = loadConfig(dir, {});
  assert.equal(fromFile.config, null);
  assert.deepEqual(fromFile.diagnostics.map(formatDiagnostic), [
    `records.yaml:6:13: proxy.config.hostdb.host_file.path: the hosts file '${join(dir, 'hosts')}' does not exist`,
  ]);
  const fromEnv = loadConfig(dir, { PROXY_CONFIG_HOSTDB_HOST_FILE_PATH: '/nonexistent/hosts' });
  assert.deepEqual(fromEnv.diagnostics.map(formatDiagnostic), [
    "env: PROXY_CONFIG_HOSTDB_HOST_FILE_PATH: the hosts file '/nonexistent/hosts' does not exist",
  ]);
  const legacy = configDir(t, { 'records.config': 'CONFIG proxy.config.hostdb.host_file.path STRING my-hosts\n' });
  assert.deepEqual(loadConfig(legacy, {}).diagnostics.map(formatDiagnostic), [
    `records.config:1:50: proxy.config.hostdb.host_file.path: the hosts file '${join(legacy, 'my-hosts')}' does not exist`,
  ]);
});

test('loadConfig: a hosts file outside the config dir is named by its absolute path', { timeout: 10_000 }, (t) => {
  const outside = configDir(t, { 'hosts.txt': 'bad line\n' });
  const dir = configDir(t, { 'records.yaml': `records:\n  hostdb:\n    host_file:\n      path: ${join(outside, 'hosts.txt')}\n` });
  assert.deepEqual(loadConfig(dir, {}).diagnostics.map(formatDiagnostic), [`${join(outside, 'hosts.txt')}:1:1: invalid address 'bad'`]);
});

test('loadConfig: an unreadable file is an error at line 1 col 1', { timeout: 10_000 }, (t) => {
  const dir = configDir(t, { 'plugin.config': 'a.so\n' });
  mkdirSync(join(dir, 'remap.config'));
  const { config, partial, diagnostics } = loadConfig(dir, {});
  assert.equal(config, null);
  assert.equal(diagnostics.length, 1);
  assert.match(formatDiagnostic(diagnostics[0]!), /^remap\.config:1:1: cannot read remap\.config: EISDIR/);
  assert.deepEqual(
    partial.plugins.map((p) => p.name),
    ['a.so'],
  );
});

test('formatDiagnostic: FILE:LINE:COL, warning prefix, no position for line 0', { timeout: 10_000 }, () => {
  assert.equal(formatDiagnostic({ file: 'remap.config', line: 3, col: 7, message: 'bad', severity: 'error' }), 'remap.config:3:7: bad');
  assert.equal(formatDiagnostic({ file: 'a', line: 1, col: 1, message: 'hm', severity: 'warning' }), 'a:1:1: warning: hm');
  assert.equal(formatDiagnostic({ file: 'env', line: 0, col: 0, message: 'X: bad', severity: 'error' }), 'env: X: bad');
});
