import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSslMulticert } from '../../../host/config/ssl-multicert.js';
import type { Diagnostic } from '../../../host/config/types.js';

const CERTS = '/etc/tsproxy/certs';
const KEYS = '/etc/tsproxy/keys';

function shown(ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);
}

test('ssl_multicert.config: entries, defaults, quoting and path resolution', { timeout: 10_000 }, () => {
  const text = [
    '# server certificates',
    'dest_ip=* ssl_cert_name=server.pem ssl_key_name=server.key',
    '  ssl_cert_name=both.pem   # key in the same file; no dest_ip means *',
    'dest_ip=127.0.0.1 ssl_cert_name="/abs/my cert.pem" ssl_key_name="sub/my key.pem"',
    'DEST_IP=[::1] SSL_CERT_NAME=v6.pem',
    'dest_ip=::1 ssl_cert_name=v6b.pem\r',
    '',
  ].join('\n');
  const { value, diagnostics } = parseSslMulticert(text, 'ssl_multicert.config', CERTS, KEYS);
  assert.deepEqual(diagnostics, []);
  const f = 'ssl_multicert.config';
  assert.deepEqual(value, [
    { destIp: '*', certFile: `${CERTS}/server.pem`, keyFile: `${KEYS}/server.key`, file: f, line: 2 },
    { destIp: '*', certFile: `${CERTS}/both.pem`, keyFile: `${CERTS}/both.pem`, file: f, line: 3 },
    { destIp: '127.0.0.1', certFile: '/abs/my cert.pem', keyFile: `${KEYS}/sub/my key.pem`, file: f, line: 4 },
    { destIp: '::1', certFile: `${CERTS}/v6.pem`, keyFile: `${CERTS}/v6.pem`, file: f, line: 5 },
    { destIp: '::1', certFile: `${CERTS}/v6b.pem`, keyFile: `${CERTS}/v6b.pem`, file: f, line: 6 },
  ]);
});

test('ssl_multicert.config: keys tsproxy does not use are warnings; comma lists use the first', { timeout: 10_000 }, () => {
  const text = [
    'ssl_cert_name=rsa.pem,ecdsa.pem ssl_key_name=rsa.key,ecdsa.key ssl_ca_name=ca.pem ssl_ticket_enabled=0',
    'dest_ip=10.0.0.1 action=tunnel',
  ].join('\n');
  const { value, diagnostics } = parseSslMulticert(text, 'ssl_multicert.config', CERTS, KEYS);
  assert.deepEqual(shown(diagnostics), [
    "ssl_multicert.config:1:64: warning: 'ssl_ca_name' is not used by tsproxy; ignored",
    "ssl_multicert.config:1:83: warning: 'ssl_ticket_enabled' is not used by tsproxy; ignored",
    "ssl_multicert.config:1:15: warning: 'ssl_cert_name' lists 2 files; tsproxy uses only the first ('rsa.pem')",
    "ssl_multicert.config:1:46: warning: 'ssl_key_name' lists 2 files; tsproxy uses only the first ('rsa.key')",
    "ssl_multicert.config:2:18: warning: 'action' is not used by tsproxy; ignored",
    "ssl_multicert.config:2:18: warning: 'action=tunnel' is not supported; line skipped",
  ]);
  assert.deepEqual(value, [{ destIp: '*', certFile: `${CERTS}/rsa.pem`, keyFile: `${KEYS}/rsa.key`, file: 'ssl_multicert.config', line: 1 }]);
});

test('ssl_multicert.config: every error at file:line:col; good lines still load', { timeout: 10_000 }, () => {
  const text = [
    'ssl_cert_name=ok.pem',
    'dest_ip=1.2.3.4',
    'dest_ip=999.1.1.1 ssl_cert_name=a.pem',
    'ssl_cert_name=a.pem colour=blue',
    'ssl_cert_name=a.pem ssl_cert_name=b.pem',
    'ssl_cert_name=a.pem orphan',
    'ssl_cert_name="unterminated',
    'ssl_cert_name= dest_ip=*',
    '=x ssl_cert_name=a.pem',
  ].join('\n');
  const { value, diagnostics } = parseSslMulticert(text, 'ssl_multicert.config', CERTS, KEYS);
  assert.deepEqual(shown(diagnostics), [
    "ssl_multicert.config:2:1: error: missing 'ssl_cert_name'",
    "ssl_multicert.config:3:9: error: invalid dest_ip '999.1.1.1' (expected * or an IP address)",
    "ssl_multicert.config:4:21: error: unknown key 'colour'",
    "ssl_multicert.config:5:21: error: duplicate key 'ssl_cert_name'",
    "ssl_multicert.config:6:21: error: expected key=value, found 'orphan'",
    "ssl_multicert.config:7:15: error: unterminated quote in the value of 'ssl_cert_name'",
    "ssl_multicert.config:8:15: error: empty value for 'ssl_cert_name'",
    "ssl_multicert.config:9:1: error: expected key=value, found '=x'",
  ]);
  assert.deepEqual(
    value.map((e) => e.line),
    [1],
  );
});
