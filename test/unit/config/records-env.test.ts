import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRecords, recordEnvName } from '../../../host/config/records.js';
import { RECORD_NAMES } from '../../../host/config/records-schema.js';
import type { Diagnostic } from '../../../host/config/types.js';

const T = { timeout: 10_000 };

function configDir(t: TestContext, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-records-env-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const shown = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);

test('the env name is the record name upper-cased with . as _', T, () => {
  assert.equal(recordEnvName('proxy.config.http.cache.http'), 'PROXY_CONFIG_HTTP_CACHE_HTTP');
  assert.equal(new Set(RECORD_NAMES.map(recordEnvName)).size, RECORD_NAMES.length);
});

test('an environment variable overrides the file, including a bad file value', T, (t) => {
  const dir = configDir(t, { 'records.yaml': 'records:\n  http:\n    cache:\n      http: 1\n    connect_ports: 443\n' });
  const { value: r, diagnostics } = loadRecords(dir, {
    PROXY_CONFIG_HTTP_CACHE_HTTP: '0',
    PROXY_CONFIG_HTTP_CONNECT_PORTS: '*',
    PROXY_CONFIG_HTTP_TRANSACTION_NO_ACTIVITY_TIMEOUT_OUT: '7',
    PROXY_CONFIG_SSL_CLIENT_VERIFY_SERVER_POLICY: 'ENFORCED',
    PATH: '/usr/bin',
  });
  assert.deepEqual(diagnostics, []);
  assert.equal(r.values.get('proxy.config.http.cache.http'), 0);
  assert.equal(r.connectPorts.any, true);
  assert.deepEqual([r.noActivityTimeoutIn, r.noActivityTimeoutOut], [30, 7]);
  assert.equal(r.ssl.verifyServerPolicy, 'ENFORCED');
});

test('overrides apply with no records file, and to the ATS 9 name of a renamed record', T, (t) => {
  const dir = configDir(t);
  const { value: r, diagnostics } = loadRecords(dir, { PROXY_CONFIG_EXEC_THREAD_AUTOCONFIG: '0', PROXY_CONFIG_HTTP_SERVER_PORTS: '0:ipv6' });
  assert.deepEqual(diagnostics, []);
  assert.equal(r.values.get('proxy.config.exec_thread.autoconfig.enabled'), 0);
  assert.deepEqual(
    r.serverPorts.map((p) => [p.port, p.family]),
    [[0, 6]],
  );
});

test('a bad override is an error naming the variable; the default stays', T, (t) => {
  const dir = configDir(t);
  const { value: r, diagnostics } = loadRecords(dir, {
    PROXY_CONFIG_HTTP_CACHE_HTTP: 'abc',
    PROXY_CONFIG_NET_CONNECTIONS_THROTTLE: '-5',
    PROXY_CONFIG_HTTP_SERVER_PORTS: '8080:bogus',
    PROXY_CONFIG_HTTP_CONECT_PORTS: '443',
    PROXY_CONFIG_LOG_LOGGING_ENABLED: '3',
  });
  assert.deepEqual(shown(diagnostics), [
    'env:0:0: warning: unknown record variable PROXY_CONFIG_HTTP_CONECT_PORTS; did you mean PROXY_CONFIG_HTTP_CONNECT_PORTS?',
    'env:0:0: warning: unknown record variable PROXY_CONFIG_LOG_LOGGING_ENABLED (not used by tsproxy); ignored',
    "env:0:0: error: PROXY_CONFIG_HTTP_CACHE_HTTP: proxy.config.http.cache.http must be an integer, got 'abc'",
    'env:0:0: error: PROXY_CONFIG_NET_CONNECTIONS_THROTTLE: proxy.config.net.connections_throttle must be >= 0, got -5',
    "env:0:0: error: PROXY_CONFIG_HTTP_SERVER_PORTS: unknown option 'bogus' in descriptor '8080:bogus'",
  ]);
  assert.equal(r.connectionsThrottle, 30000);
});

test('an unreadable records file is an error, not a crash', T, (t) => {
  const dir = configDir(t);
  mkdirSync(join(dir, 'records.yaml'));
  const { value: r, diagnostics } = loadRecords(dir, {});
  assert.equal(diagnostics.length, 1);
  assert.deepEqual([diagnostics[0]?.file, diagnostics[0]?.line, diagnostics[0]?.col, diagnostics[0]?.severity], [join(dir, 'records.yaml'), 1, 1, 'error']);
  assert.match(diagnostics[0]?.message ?? '', /^cannot read: /);
  assert.equal(r.serverPorts[0]?.port, 8080);
});
