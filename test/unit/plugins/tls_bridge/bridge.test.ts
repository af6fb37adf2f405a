import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';
import { Event, HookId } from '../../../../host/api/index.js';
import {
  Bridge,
  BridgeState,
  FAILED_STATUS,
  STRIPPED_FIELDS,
  internalConnect,
  type BridgeEnv,
} from '../../../../plugins/tls_bridge/bridge.js';
import { duplexPair, FakeApi, FakeTxn, Sink } from './fake-host.js';

const PEER = 'peer.ats:4443';
const CLIENT_CONNECT = 'CONNECT www.service.com:443 HTTP/1.1\r\nHost: www.service.com:443\r\nUser-Agent: t\r\n\r\n';

/** A bridge accepted on a fresh UA pair, with the host having written the client's CONNECT to it. */
async function started() {
  const fake = new FakeApi();
  let id = 0;
  const env: BridgeEnv = { api: fake.asApi(), dbg: fake.dbg, nextConnectId: () => ++id };
  const txn = new FakeTxn(7, 'CONNECT', 'www.service.com');
  const bridge = new Bridge(env, txn.asTxn(), PEER);
  txn.hookAdd(HookId.HttpSendResponseHdr, bridge.txnHook);
  txn.hookAdd(HookId.HttpTxnClose, bridge.txnHook);
  const [uaHost, uaPlugin] = duplexPair();
  uaHost.write(CLIENT_CONNECT);
  bridge.accept(uaPlugin);
  const out = fake.hostEnds[0];
  assert.ok(out, 'httpConnect was called');
  const outSink = new Sink(out);
  const uaSink = new Sink(uaHost);
  await outSink.until((s) => s.text().length >= internalConnect(PEER).length);
  return { fake, txn, bridge, uaHost, uaPlugin, out, outSink, uaSink };
}

test('the internal CONNECT is ATS bytes; nothing from the client goes out before READY', async () => {
  const { fake, bridge, outSink } = await started();
  await tick();
  assert.equal(outSink.text(), 'CONNECT https://peer.ats:4443 HTTP/1.1\r\n\r\n');
  assert.equal(bridge.state, BridgeState.Open);
  assert.deepEqual(fake.connects, [{ addr: { address: '127.0.0.1', port: 50000, family: 'IPv4' }, tag: 'tls_bridge', id: 1 }]);
  assert.deepEqual(fake.debug, ['Received UA VConn, connecting to peer peer.ats:4443']);
});

test('200 READY: the client CONNECT goes to the peer, bytes after the reply header reach the UA first', async () => {
  const { fake, bridge, out, outSink, uaSink } = await started();
  out.write('HTTP/1.1 200 OK\r\nConn');
  await tick();
  assert.equal(bridge.state, BridgeState.Ok);
  out.write('ection: close\r\n\r\nHTTP/1.1 200 OK\r\n\r\nfrom-peer');
  await outSink.until((s) => s.text().endsWith(CLIENT_CONNECT));
  await uaSink.until((s) => s.text() === 'HTTP/1.1 200 OK\r\n\r\nfrom-peer');
  assert.equal(bridge.state, BridgeState.Stream);
  assert.equal(fake.tunnels.length, 1);
  assert.equal(fake.tunnels[0]?.opts?.headToA?.toString(), 'HTTP/1.1 200 OK\r\n\r\nfrom-peer');
  assert.deepEqual(fake.debug, ['Received UA VConn, connecting to peer peer.ats:4443', 'Outbound status 200', 'Outbound ready']);
});

test('a reply fed one byte at a time gives the same result', async () => {
  const { fake, bridge, out, outSink } = await started();
  for (const b of Buffer.from('HTTP/1.1 200 OK\r\nA: b\r\n\r\n')) {
    out.write(Buffer.from([b]));
    await tick();
  }
  await outSink.until((s) => s.text().endsWith(CLIENT_CONNECT));
  assert.equal(bridge.state, BridgeState.Stream);
  assert.equal(fake.tunnels[0]?.opts?.headToA, undefined);
  assert.equal(fake.debug.filter((l) => l.startsWith('Outbound')).length, 2);
});

test('a non-2xx internal reply is relayed to the UA as the origin response', async () => {
  const { txn, bridge, out, uaSink } = await started();
  const reply =
    'HTTP/1.1 502 Connection Refused\r\nProxy-Status: tsproxy; error=connection_refused\r\nContent-Length: 6\r\nConnection: close\r\n\r\nrefuse';
  out.write(reply.slice(0, 10));
  await tick();
  out.end(reply.slice(10));
  await uaSink.until((s) => s.ended);
  assert.equal(uaSink.text(), reply);
  assert.equal(bridge.state, BridgeState.Error);
  assert.deepEqual(txn.statuses, [[502, 'Connection Refused']]);

  txn.resp = { status: 502, reason: 'Connection Refused', deleted: [] };
  txn.fire(HookId.HttpSendResponseHdr, Event.HttpSendResponseHdr);
  assert.deepEqual(txn.resp, { status: 502, reason: 'Connection Refused', deleted: [...STRIPPED_FIELDS] });
  assert.deepEqual(txn.reenables, [Event.HttpContinue]);
});

test('the outbound leg closing before READY: statusSet 502 and the UA VConn ends', async () => {
  const { txn, fake, out, uaSink, bridge } = await started();
  out.write('HTTP/1.1 200 OK\r\n');
  await tick();
  out.end();
  await uaSink.until((s) => s.ended);
  assert.equal(uaSink.text(), '');
  assert.deepEqual(txn.statuses, [[FAILED_STATUS.closed.code, FAILED_STATUS.closed.reason]]);
  assert.equal(bridge.state, BridgeState.Eos);
  assert.ok(fake.debug.includes('EOS upstream'));

  txn.resp = { status: 502, reason: 'Bad Gateway', deleted: [] };
  txn.fire(HookId.HttpSendResponseHdr, Event.HttpSendResponseHdr);
  assert.equal(txn.resp.reason, 'Tunnel Connection Failed', 'the stored status wins, as in ATS');
});

test('the outbound leg destroyed with an error before any reply', async () => {
  const { txn, out, uaSink } = await started();
  out.destroy(new Error('boom'));
  await uaSink.until((s) => s.ended);
  assert.deepEqual(txn.statuses, [[502, 'Tunnel Connection Failed']]);
});

test('a malformed reply is ATS 519 and an error line', async () => {
  const { txn, fake, out, uaSink } = await started();
  out.write('SSH-2.0-OpenSSH\r\n');
  await uaSink.until((s) => s.ended);
  assert.deepEqual(txn.statuses, [[519, FAILED_STATUS.malformed.reason]]);
  assert.equal(fake.errors.length, 1);
  assert.match(fake.errors[0] ?? '', /^\[TLS Bridge\] Malformed status line .* \[TLS_BRIDGE_ERR_REPLY_MALFORMED\]$/);
});

test('an oversized reply header fails with 502', async () => {
  const { txn, out, uaSink } = await started();
  out.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17000)}\r\n\r\n`);
  await uaSink.until((s) => s.ended);
  assert.deepEqual(txn.statuses, [[502, FAILED_STATUS.tooLarge.reason]]);
});

test('TXN_CLOSE destroys both legs and the tunnel, once; every hook call resumes once', async () => {
  const { txn, fake, out, outSink, uaPlugin } = await started();
  out.write('HTTP/1.1 200 OK\r\n\r\n');
  await outSink.until((s) => s.text().endsWith(CLIENT_CONNECT));
  txn.fire(HookId.HttpTxnClose, Event.HttpTxnClose);
  txn.fire(HookId.HttpTxnClose, Event.HttpTxnClose);
  assert.equal(fake.tunnels[0]?.destroyed, 1);
  assert.ok(uaPlugin.destroyed);
  assert.ok(fake.debug.includes('TXN_CLOSE: cleanup'));
  assert.deepEqual(txn.reenables, [Event.HttpContinue, Event.HttpContinue]);
});

test('TXN_CLOSE before the UA VConn arrives: the late VConn is closed, nothing is opened', () => {
  const fake = new FakeApi();
  const txn = new FakeTxn(1, 'CONNECT', 'a');
  const bridge = new Bridge({ api: fake.asApi(), dbg: fake.dbg, nextConnectId: () => 1 }, txn.asTxn(), PEER);
  bridge.txnHook(txn.asTxn(), Event.HttpTxnClose);
  const [, ua] = duplexPair();
  bridge.accept(ua);
  assert.ok(ua.destroyed);
  assert.equal(fake.connects.length, 0);
});

test('SEND_RESPONSE_HDR without a client response logs and resumes', async () => {
  const { txn, fake } = await started();
  txn.fire(HookId.HttpSendResponseHdr, Event.HttpSendResponseHdr);
  assert.ok(fake.debug.includes('SEND_RESPONSE_HDR'));
  assert.ok(fake.debug.includes('Failed to retrieve client response'));
  assert.deepEqual(txn.reenables, [Event.HttpContinue]);
});

test('httpConnect throwing fails the transaction, not the process', async () => {
  const fake = new FakeApi();
  fake.connectThrows = true;
  const txn = new FakeTxn(3, 'CONNECT', 'a');
  const bridge = new Bridge({ api: fake.asApi(), dbg: fake.dbg, nextConnectId: () => 1 }, txn.asTxn(), PEER);
  const [uaHost, ua] = duplexPair();
  const sink = new Sink(uaHost);
  bridge.accept(ua);
  await sink.until((s) => s.ended);
  assert.deepEqual(txn.statuses, [[502, 'Tunnel Connection Failed']]);
  assert.match(fake.errors[0] ?? '', /^\[TLS Bridge\] Transaction 3: no more connections \[TLS_BRIDGE_ERR_INTERNAL\]$/);
});

test('the tunnel breaking before the peer answered sets 502; after it answered, nothing changes', async () => {
  const early = await started();
  early.out.write('HTTP/1.1 200 OK\r\n\r\n');
  await early.outSink.until((s) => s.text().endsWith(CLIENT_CONNECT));
  early.out.end();
  await early.uaSink.until((s) => s.ended);
  assert.deepEqual(early.txn.statuses, [[502, 'Tunnel Connection Failed']]);

  const late = await started();
  late.out.write('HTTP/1.1 200 OK\r\n\r\n');
  await late.outSink.until((s) => s.text().endsWith(CLIENT_CONNECT));
  late.out.end('HTTP/1.1 200 OK\r\n\r\nbye');
  await late.uaSink.until((s) => s.ended);
  assert.equal(late.uaSink.text(), 'HTTP/1.1 200 OK\r\n\r\nbye');
  assert.deepEqual(late.txn.statuses, []);
});
