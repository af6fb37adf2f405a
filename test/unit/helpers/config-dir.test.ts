import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { makeConfigDir, nestRecords } from '../../helpers/config-dir.js';

test('nestRecords: dotted, prefixed and nested names merge into one tree', () => {
  assert.deepEqual(
    nestRecords({
      'proxy.config.http.server_ports': '0 0:ssl',
      'http.connect_ports': '443',
      http: { cache: { http: 0 } },
      'proxy.local.diags.debug.enabled': 1,
      ssl: { 'client.certification_level': 2 },
    }),
    {
      http: { server_ports: '0 0:ssl', connect_ports: '443', cache: { http: 0 } },
      diags: { debug: { enabled: 1 } },
      ssl: { client: { certification_level: 2 } },
    },
  );
});

test('nestRecords: a name given twice, or both a value and a parent, is an error', () => {
  assert.throws(() => nestRecords({ 'http.cache.http': 0, http: { cache: { http: 1 } } }), /'http\.cache\.http' given twice/);
  assert.throws(() => nestRecords({ 'ssl.TLSv1_3': 1, 'ssl.TLSv1_3.enabled': 1 }), /already has a value/);
  assert.throws(() => nestRecords({ 'http..x': 1 }), /bad record name/);
});

test('makeConfigDir writes records.yaml and the other files, and cleanup removes them', async () => {
  const cfg = await makeConfigDir({
    records: { 'proxy.config.http.server_ports': '0' },
    pluginConfig: 'tls_bridge.js a b\n',
    remap: 'map http://a/ http://b/\n',
    ipAllow: 'ip_allow: []\n',
    sslMulticert: 'dest_ip=* ssl_cert_name=a.pem\n',
    sniYaml: 'sni: []\n',
    hosts: '127.0.0.1 peer.test\n',
    files: { 'sub/dir/bridge.config': '.* peer:1\n' },
  });
  try {
    const read = (name: string): string => readFileSync(join(cfg.dir, name), 'utf8');
    assert.deepEqual(parse(read('records.yaml')), {
      records: { http: { server_ports: '0' }, hostdb: { host_file: { path: join(cfg.dir, 'hosts') } } },
    });
    assert.equal(read('plugin.config'), 'tls_bridge.js a b\n');
    assert.equal(read('remap.config'), 'map http://a/ http://b/\n');
    assert.equal(read('ip_allow.yaml'), 'ip_allow: []\n');
    assert.equal(read('ssl_multicert.config'), 'dest_ip=* ssl_cert_name=a.pem\n');
    assert.equal(read('sni.yaml'), 'sni: []\n');
    assert.equal(read('hosts'), '127.0.0.1 peer.test\n');
    assert.equal(read('sub/dir/bridge.config'), '.* peer:1\n');
  } finally {
    cfg.cleanup();
  }
  assert.equal(existsSync(cfg.dir), false);
});

test('makeConfigDir: an explicit host_file.path wins over the written hosts file; no records gives an empty map', async () => {
  const a = await makeConfigDir({ records: { 'hostdb.host_file.path': '/x/hosts' }, hosts: '' });
  const b = await makeConfigDir();
  try {
    assert.deepEqual(parse(readFileSync(join(a.dir, 'records.yaml'), 'utf8')), { records: { hostdb: { host_file: { path: '/x/hosts' } } } });
    assert.deepEqual(parse(readFileSync(join(b.dir, 'records.yaml'), 'utf8')), { records: {} });
    assert.equal(existsSync(join(b.dir, 'plugin.config')), false);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});
