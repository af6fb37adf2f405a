import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Event, HookId, TxnCntl } from '../../../../host/api/index.js';
import type { BridgeEnv } from '../../../../plugins/tls_bridge/bridge.js';
import { parseBridgeArgs } from '../../../../plugins/tls_bridge/config.js';
import plugin, { NO_DESTINATIONS, readRequestHdrHook } from '../../../../plugins/tls_bridge/index.js';
import { FakeApi, FakeTxn } from './fake-host.js';

function hook(fake: FakeApi) {
  const { config } = parseBridgeArgs({ configDir: '/', file: '/plugin.config', line: 1 }, [
    'tls_bridge.so',
    '.*[.]service[.]com',
    'peer.ats:4443',
  ]);
  const env: BridgeEnv = { api: fake.asApi(), dbg: fake.dbg, nextConnectId: () => 1 };
  return readRequestHdrHook(env, config);
}

function run(fake: FakeApi, txn: FakeTxn): void {
  hook(fake)(txn as unknown as Parameters<ReturnType<typeof hook>>[0], Event.HttpReadRequestHdr);
}

test('a matching CONNECT is intercepted, remap skipped, two txn hooks added; resumed once', () => {
  const fake = new FakeApi();
  const txn = new FakeTxn(7, 'CONNECT', 'www.service.com');
  run(fake, txn);
  assert.ok(txn.onAccept !== null);
  assert.deepEqual(txn.hooks.map(([id]) => id), [HookId.HttpSendResponseHdr, HookId.HttpTxnClose]);
  assert.deepEqual(txn.cntl, [[TxnCntl.SkipRemapping, true]]);
  assert.deepEqual(txn.reenables, [Event.HttpContinue]);
  assert.deepEqual(fake.debug, ["Intercepting transaction 7 to 'www.service.com' via 'peer.ats:4443'"]);
});

test('internal, non-CONNECT, host-less and non-matching transactions pass untouched', () => {
  const cases: FakeTxn[] = [
    Object.assign(new FakeTxn(1, 'CONNECT', 'www.service.com'), { isInternal: true }),
    new FakeTxn(2, 'GET', 'www.service.com'),
    new FakeTxn(3, 'connect', 'www.service.com'),
    new FakeTxn(4, 'CONNECT', null),
    new FakeTxn(5, 'CONNECT', 'x.service.com.evil'),
  ];
  for (const txn of cases) {
    const fake = new FakeApi();
    run(fake, txn);
    assert.equal(txn.onAccept, null, `txn ${txn.id}`);
    assert.deepEqual(txn.hooks, []);
    assert.deepEqual(txn.reenables, [Event.HttpContinue]);
    assert.deepEqual(fake.debug, []);
  }
});

test('a throw inside the hook is logged and the transaction still resumes CONTINUE once', () => {
  const fake = new FakeApi();
  const txn = new FakeTxn(9, 'CONNECT', 'a.service.com');
  txn.interceptThrows = true;
  run(fake, txn);
  assert.deepEqual(txn.reenables, [Event.HttpContinue]);
  assert.equal(fake.errors.length, 1);
  assert.match(fake.errors[0] ?? '', /^\[TLS Bridge\] Transaction 9: already intercepted$/);
});

test('init with no destinations logs as ATS and still adds the hook', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-bridge-init-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'plugin.config'), 'tls_bridge.so\n');
  const fake = new FakeApi();
  fake.configDir = dir;
  plugin.init(fake.asApi(), ['tls_bridge.so']);
  assert.deepEqual(fake.debug, [NO_DESTINATIONS]);
  assert.deepEqual(fake.notes, [`[TLS Bridge] ${NO_DESTINATIONS}`]);
  assert.deepEqual(fake.globalHooks.map(([id]) => id), [HookId.HttpReadRequestHdr]);
});

test('init reads --file relative to the config directory', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-bridge-init-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'bridge.config'), 'a[.]b peer.ats\n');
  const fake = new FakeApi();
  fake.configDir = dir;
  plugin.init(fake.asApi(), ['tls_bridge.so', '--file', 'bridge.config']);
  assert.deepEqual(fake.debug, []);
  const txn = new FakeTxn(1, 'CONNECT', 'A.B');
  const [, h] = fake.globalHooks[0] ?? [];
  h?.(txn as unknown as Parameters<NonNullable<typeof h>>[0], Event.HttpReadRequestHdr);
  assert.ok(txn.onAccept !== null);
});

test('info is the plugin identity', () => {
  assert.deepEqual(plugin.info, { name: 'tls_bridge', vendor: 'tsproxy', email: '' });
});
