import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { makeConfigDir } from '../../helpers/config-dir.js';
import { MAIN_JS } from '../../helpers/paths.js';
import { parseListening, startTsproxy, verifyConfig } from '../../helpers/proc.js';

test('parseListening: entries in order, IPv6 unbracketed, other lines null', () => {
  assert.deepEqual(parseListening('[Nov 23 09:30:15.123] NOTE: listening on 127.0.0.1:41234 (http), [::1]:41235 (ssl), 0.0.0.0:9 (blind)'), [
    { address: '127.0.0.1', port: 41234, kind: 'http' },
    { address: '::1', port: 41235, kind: 'ssl' },
    { address: '0.0.0.0', port: 9, kind: 'blind' },
  ]);
  assert.equal(parseListening('[Nov 23 09:30:15.123] DEBUG: (http) listening on nothing'), null);
  assert.equal(parseListening('[t] NOTE: listening on 127.0.0.1:1 (quic)'), null);
});

test('startTsproxy: ports from the listening line, waitForLine, SIGTERM exits 0', { timeout: 20_000 }, async (t) => {
  if (!existsSync(MAIN_JS)) {
    t.skip(`${MAIN_JS} not built`);
    return;
  }
  const cfg = await makeConfigDir({ records: { 'http.server_ports': '0:ip-in=127.0.0.1 0:ip-in=[::1]:ipv6' } });
  t.after(() => cfg.cleanup());
  const proxy = await startTsproxy(cfg.dir, { t });
  assert.deepEqual(proxy.ports.map((p) => [p.address, p.kind]), [['127.0.0.1', 'http'], ['::1', 'http']]);
  assert.equal(proxy.port('http'), proxy.ports[0]?.port);
  assert.throws(() => proxy.port('ssl'), /no ssl port/);
  assert.match(await proxy.waitForLine(/NOTE: listening on/, 1000), /127\.0\.0\.1/);
  await assert.rejects(proxy.waitForLine(/never printed/, 100), /no line matched/);
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: proxy.port() }, () => {
      s.destroy();
      resolve();
    });
    s.on('error', reject);
  });
  assert.deepEqual(await proxy.stop(), { code: 0, signal: null });
  assert.deepEqual(await proxy.stop(), { code: 0, signal: null }, 'stop twice');
});

test('startTsproxy rejects with the output when the config is invalid; verifyConfig reports FILE:LINE:COL', { timeout: 20_000 }, async (t) => {
  if (!existsSync(MAIN_JS)) {
    t.skip(`${MAIN_JS} not built`);
    return;
  }
  const cfg = await makeConfigDir({ records: { 'http.server_ports': 'bogus' } });
  t.after(() => cfg.cleanup());
  await assert.rejects(startTsproxy(cfg.dir, { t }), /exited \(\{"code":1,"signal":null\}\)[^]*records\.yaml:\d+:\d+: /);
  const v = await verifyConfig(cfg.dir);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /records\.yaml:\d+:\d+: .*server_ports/);
});
