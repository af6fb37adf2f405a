import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRecords } from '../../../host/config/records.js';
import { RECORDS } from '../../../host/config/records-schema.js';
import type { Diagnostic } from '../../../host/config/types.js';

const T = { timeout: 10_000 };

/** A fresh config dir holding `files`, removed after the test. */
function configDir(t: TestContext, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-records-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Diagnostics as `FILE:LINE:COL: severity: message`, with the config dir shown as `D`. */
function shown(dir: string, ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.file.replace(dir, 'D')}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);
}

test('no records file: every default, no diagnostics', T, (t) => {
  const dir = configDir(t);
  const { value: r, diagnostics } = loadRecords(dir, {});
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(r.serverPorts, [{ port: 8080, family: 4, ssl: false, blind: false, ipIn: null, text: '8080' }]);
  assert.deepEqual(r.connectPorts, { any: false, ranges: [[443, 443]] });
  assert.equal(r.remapRequired, true);
  assert.equal(r.hostFilePath, null);
  assert.deepEqual([r.debugEnabled, r.debugTags], [0, 'http|dns']);
  assert.deepEqual(r.ssl, {
    serverCertDir: dir,
    serverKeyDir: dir,
    clientCaForInbound: null,
    certificationLevel: 0,
    verifyServerPolicy: 'ENFORCED',
    verifyServerProperties: 'ALL',
    clientCa: null,
    clientCert: null,
    clientKey: null,
    originSessionCacheSize: 10240,
  });
  assert.deepEqual(r.prewarm, { min: 2, inactiveTimeoutMs: 20_000 });
  assert.deepEqual(
    [r.handshakeTimeoutIn, r.connectAttemptsTimeout, r.noActivityTimeoutIn, r.noActivityTimeoutOut, r.connectionsThrottle, r.requestHeaderMaxSize],
    [30, 30, 30, 30, 30000, 131072],
  );
  assert.equal(r.pluginDir, join(dir, 'plugins'));
  assert.deepEqual([...r.values], RECORDS.map((x) => [x.name, x.default]));
});

test('records.yaml: values typed, paths resolved against the config dir', T, (t) => {
  const dir = configDir(t, {
    'records.yaml': `records:
  http:
    server_ports: 0 8443:ssl 9000:blind:ipv4:ipv6
    connect_ports: 443 8000-8100
    request_header_max_size: "64K"
    transaction_no_activity_timeout_in: "5"
  url_remap:
    remap_required: 0
  hostdb.host_file.path: hosts
  diags:
    debug:
      enabled: 1
      tags: tls_bridge|http
  plugin:
    plugin_dir: /opt/plugins
  ssl:
    server:
      cert.path: certs
      private_key.path: /keys
    CA.cert.path: ca
    client:
      certification_level: 2
      verify.server.policy: ENFORCED
      verify.server.properties: NAME
      CA:
        cert:
          path: /etc/ca-dir
      cert:
        path: client
        filename: client.pem
      private_key:
        path: client
        filename: /abs/client.key
`,
  });
  const { value: r, diagnostics } = loadRecords(dir, {});
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(
    r.serverPorts.map((p) => [p.port, p.family, p.ssl, p.blind]),
    [
      [0, 4, false, false],
      [8443, 4, true, false],
      [9000, 4, false, true],
      [9000, 6, false, true],
    ],
  );
  assert.deepEqual(r.connectPorts.ranges, [
    [443, 443],
    [8000, 8100],
  ]);
  assert.deepEqual([r.requestHeaderMaxSize, r.noActivityTimeoutIn, r.remapRequired], [65536, 5, false]);
  assert.equal(r.values.get('proxy.config.http.request_header_max_size'), 65536);
  assert.equal(r.hostFilePath, join(dir, 'hosts'));
  assert.deepEqual([r.debugEnabled, r.debugTags], [1, 'tls_bridge|http']);
  assert.equal(r.pluginDir, '/opt/plugins');
  assert.deepEqual(r.ssl, {
    serverCertDir: join(dir, 'certs'),
    serverKeyDir: '/keys',
    clientCaForInbound: join(dir, 'ca'),
    certificationLevel: 2,
    verifyServerPolicy: 'ENFORCED',
    verifyServerProperties: 'NAME',
    clientCa: '/etc/ca-dir',
    clientCert: join(dir, 'client', 'client.pem'),
    clientKey: '/abs/client.key',
    originSessionCacheSize: 10240,
  });
});

test('CA path + filename is one file; a filename alone is relative to the config dir', T, (t) => {
  const dir = configDir(t, {
    'records.yaml': 'records:\n  ssl:\n    CA.cert: { path: /etc/ca, filename: ca.pem }\n    client.CA.cert.filename: origin-ca.pem\n',
  });
  const { value: r, diagnostics } = loadRecords(dir, {});
  assert.deepEqual(diagnostics, []);
  assert.equal(r.ssl.clientCaForInbound, '/etc/ca/ca.pem');
  assert.equal(r.ssl.clientCa, join(dir, 'origin-ca.pem'));
});

test('legacy records.config when there is no records.yaml', T, (t) => {
  const dir = configDir(t, {
    'records.config': 'CONFIG proxy.config.http.server_ports STRING 8081 8081:ipv6\nCONFIG proxy.config.ssl.client.cert.filename STRING NULL\n',
  });
  const { value: r, diagnostics } = loadRecords(dir, {});
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(
    r.serverPorts.map((p) => [p.port, p.family]),
    [
      [8081, 4],
      [8081, 6],
    ],
  );
  assert.equal(r.ssl.clientCert, null);
});

test('both files: records.yaml wins, a warning says records.config was ignored', T, (t) => {
  const dir = configDir(t, {
    'records.yaml': 'records:\n  http:\n    connect_ports: 1000\n',
    'records.config': 'CONFIG proxy.config.http.connect_ports STRING 2000\n',
  });
  const { value: r, diagnostics } = loadRecords(dir, {});
  assert.deepEqual(r.connectPorts.ranges, [[1000, 1000]]);
  assert.deepEqual(shown(dir, diagnostics), ['D/records.config:1:1: warning: records.config is ignored because records.yaml exists']);
});

test('schema errors at the value, unknown records as warnings at the key, invalid values fall back to defaults', T, (t) => {
  const dir = configDir(t, {
    'records.yaml': `records:
  http:
    cache:
      http: 1
    conect_ports: 443
    connect_attempts_timeout: abc
    transaction_no_activity_timeout_out: -1
    request_header_max_size: 1.5
    server_ports: 8080 70000 8443:ssl:blind
  log:
    logging_enabled: 3
  exec_thread.limit: 257
  url_remap.remap_required: "1"
  diags.debug.enabled: 3
  ssl:
    client.verify.server.policy: enforced
    server.cert.path: [a]
`,
  });
  const { value: r, diagnostics } = loadRecords(dir, {});
  assert.deepEqual(shown(dir, diagnostics), [
    'D/records.yaml:4:13: error: cache is not supported; set proxy.config.http.cache.http to 0',
    "D/records.yaml:5:5: warning: unknown record 'proxy.config.http.conect_ports'; did you mean 'proxy.config.http.connect_ports'?",
    "D/records.yaml:6:31: error: proxy.config.http.connect_attempts_timeout must be an integer, got 'abc'",
    'D/records.yaml:7:42: error: proxy.config.http.transaction_no_activity_timeout_out must be >= 0, got -1',
    'D/records.yaml:8:30: error: proxy.config.http.request_header_max_size must be an integer, got 1.5',
    'D/records.yaml:9:24: error: proxy.config.http.server_ports: port 70000 is out of range 0..65535 in descriptor \'70000\'',
    "D/records.yaml:9:30: error: proxy.config.http.server_ports: 'ssl' and 'blind' cannot be combined in descriptor '8443:ssl:blind'",
    "D/records.yaml:11:5: warning: unknown record 'proxy.config.log.logging_enabled' (not used by tsproxy); ignored",
    'D/records.yaml:12:22: error: proxy.config.exec_thread.limit must be in 1..256, got 257',
    'D/records.yaml:14:24: error: proxy.config.diags.debug.enabled must be one of 0, 1, 2; got 3',
    "D/records.yaml:16:34: error: proxy.config.ssl.client.verify.server.policy must be one of DISABLED, PERMISSIVE, ENFORCED; got 'enforced'",
    'D/records.yaml:17:23: error: proxy.config.ssl.server.cert.path must be a string, got ["a"]',
  ]);
  assert.equal(r.values.get('proxy.config.http.cache.http'), 0);
  assert.equal(r.values.get('proxy.config.exec_thread.limit'), 2);
  assert.equal(r.values.get('proxy.config.url_remap.remap_required'), 1);
  assert.equal(r.connectAttemptsTimeout, 30);
  assert.deepEqual(
    r.serverPorts.map((p) => p.port),
    [8080],
  );
});
