/**
 * Hook transcripts (ats.md 2.3): which hooks run, in which order, in which scope, for a forwarded
 * GET, a CONNECT tunnel and an intercepted request. Global hooks run before session hooks, which
 * run before transaction hooks; within a scope, insertion order (plugin.config order globally).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Event, HOOK_NAMES, HookId, hookEvent } from '../../host/api/index.js';
import type { Api, EventId, Hook, HttpHookId, Ssn, Txn } from '../../host/api/index.js';
import { echoServer, httpOrigin } from '../helpers/servers.js';
import { Conn, startHost, waitUntil } from './harness.js';

const T = { timeout: 15_000 };

/** Every HTTP hook a transcript records (READ_CACHE_HDR / CACHE_LOOKUP_COMPLETE never fire: no cache). */
const TXN_HOOKS: readonly HttpHookId[] = [
  HookId.HttpTxnStart,
  HookId.HttpReadRequestHdr,
  HookId.HttpPreRemap,
  HookId.HttpPostRemap,
  HookId.HttpOsDns,
  HookId.HttpSendRequestHdr,
  HookId.HttpReadResponseHdr,
  HookId.HttpSendResponseHdr,
  HookId.HttpTxnClose,
];
const SSN_HOOKS: readonly HttpHookId[] = [HookId.HttpSsnStart, HookId.HttpSsnClose];

interface Entry {
  readonly hook: string;
  readonly scope: string;
}

/**
 * A recorder: two global "plugins" (g1, g2) hook everything; at SSN_START g1 adds a session hook
 * for every hook; at TXN_START g2 adds a transaction hook for every later hook. Each call checks
 * that its event is the hook's event and resumes at once.
 */
function recorder(): { log: Entry[]; plugins: Record<string, (api: Api) => void>; bad: string[] } {
  const log: Entry[] = [];
  const bad: string[] = [];
  const rec =
    (scope: string, id: HttpHookId): Hook =>
    (subject: Txn & Ssn, event: EventId) => {
      if (event !== hookEvent(id) || event - Event.HttpReadRequestHdr !== id) bad.push(`${HOOK_NAMES[id]} got event ${event}`);
      log.push({ hook: HOOK_NAMES[id], scope });
      subject.reenable(Event.HttpContinue);
    };
  const g1 = (api: Api): void => {
    for (const id of [...SSN_HOOKS, ...TXN_HOOKS]) api.httpHookAdd(id, rec('global:g1', id));
    api.httpHookAdd(HookId.HttpSsnStart, (ssn: Txn & Ssn) => {
      for (const id of [...TXN_HOOKS, HookId.HttpSsnClose]) ssn.hookAdd(id, rec('session', id));
      ssn.reenable(Event.HttpContinue);
    });
  };
  const g2 = (api: Api): void => {
    for (const id of [...SSN_HOOKS, ...TXN_HOOKS]) api.httpHookAdd(id, rec('global:g2', id));
    api.httpHookAdd(HookId.HttpTxnStart, (txn: Txn & Ssn) => {
      for (const id of TXN_HOOKS.slice(1)) txn.hookAdd(id, rec('txn', id));
      txn.reenable(Event.HttpContinue);
    });
  };
  return { log, plugins: { g1, g2 }, bad };
}

/** The expected entries for `hooks`: g1, g2 (then session, then txn where those were added). */
function expected(hooks: readonly HttpHookId[]): Entry[] {
  const out: Entry[] = [];
  for (const id of hooks) {
    const name = HOOK_NAMES[id];
    out.push({ hook: name, scope: 'global:g1' }, { hook: name, scope: 'global:g2' });
    if (id === HookId.HttpSsnStart) continue;
    out.push({ hook: name, scope: 'session' });
    if (id !== HookId.HttpTxnStart && id !== HookId.HttpSsnClose) out.push({ hook: name, scope: 'txn' });
  }
  return out;
}

test('hook ids are ATS event numbers minus READ_REQUEST_HDR, for every hook', () => {
  for (const [name, id] of Object.entries(HookId)) {
    const ev = (Event as Record<string, number>)[name];
    assert.equal(typeof ev, 'number', `Event.${name} exists`);
    assert.equal(id, ev! - Event.HttpReadRequestHdr, `HookId.${name}`);
    assert.equal(hookEvent(id), ev);
  }
  // Pinned against ATS's apidefs.h values.
  assert.deepEqual(
    [HookId.HttpReadRequestHdr, HookId.HttpOsDns, HookId.HttpSendRequestHdr, HookId.HttpReadResponseHdr, HookId.HttpSendResponseHdr],
    [0, 1, 2, 4, 5],
  );
  assert.deepEqual([HookId.HttpTxnStart, HookId.HttpTxnClose, HookId.HttpSsnStart, HookId.HttpSsnClose, HookId.HttpPreRemap, HookId.HttpPostRemap], [9, 10, 11, 12, 14, 15]);
});

test('forward GET: every hook in ATS order, global → session → transaction, insertion order within', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const r = recorder();
  const h = await startHost(t, {}, { plugins: r.plugins });
  const c = await Conn.open(h.port());
  c.write(`GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
  const res = await c.response();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'GET /x\n');
  c.socket.end();
  await waitUntil(() => r.log.some((e) => e.hook === 'SSN_CLOSE' && e.scope === 'session'), 5000, 'SSN_CLOSE');
  assert.deepEqual(r.bad, []);
  assert.deepEqual(
    r.log,
    expected([
      HookId.HttpSsnStart,
      HookId.HttpTxnStart,
      HookId.HttpReadRequestHdr,
      HookId.HttpPreRemap,
      HookId.HttpPostRemap,
      HookId.HttpOsDns,
      HookId.HttpSendRequestHdr,
      HookId.HttpReadResponseHdr,
      HookId.HttpSendResponseHdr,
      HookId.HttpTxnClose,
      HookId.HttpSsnClose,
    ]),
  );
});

test('two transactions on one session: each runs its own transaction hooks; the session hooks run for both', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const r = recorder();
  const h = await startHost(t, {}, { plugins: r.plugins });
  const c = await Conn.open(h.port());
  for (const path of ['/a', '/b']) {
    c.write(`GET http://127.0.0.1:${origin.port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    assert.equal((await c.response()).body.toString(), `GET ${path}\n`);
  }
  c.socket.end();
  await waitUntil(() => r.log.some((e) => e.hook === 'SSN_CLOSE' && e.scope === 'session'), 5000, 'SSN_CLOSE');
  const txn = [
    HookId.HttpTxnStart,
    HookId.HttpReadRequestHdr,
    HookId.HttpPreRemap,
    HookId.HttpPostRemap,
    HookId.HttpOsDns,
    HookId.HttpSendRequestHdr,
    HookId.HttpReadResponseHdr,
    HookId.HttpSendResponseHdr,
    HookId.HttpTxnClose,
  ];
  assert.deepEqual(r.log, expected([HookId.HttpSsnStart, ...txn, ...txn, HookId.HttpSsnClose]));
});

test('CONNECT: no SEND_REQUEST_HDR / READ_RESPONSE_HDR; SEND_RESPONSE_HDR sees the 200; TXN_CLOSE when the tunnel ends', T, async (t) => {
  const echo = await echoServer();
  t.after(() => echo.close());
  const r = recorder();
  let sentStatus = 0;
  const h = await startHost(t, {}, {
    plugins: {
      ...r.plugins,
      probe: (api) =>
        api.httpHookAdd(HookId.HttpSendResponseHdr, (txn: Txn) => {
          sentStatus = txn.clientResp?.status ?? -1;
          txn.reenable(Event.HttpContinue);
        }),
    },
  });
  const c = await Conn.open(h.port());
  c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
  assert.equal((await c.response({ connect: true })).status, 200);
  assert.equal(sentStatus, 200);
  c.write('ping');
  assert.equal((await c.bytes(4)).toString(), 'ping');
  c.socket.end();
  await c.rest();
  await waitUntil(() => r.log.some((e) => e.hook === 'SSN_CLOSE' && e.scope === 'session'), 5000, 'SSN_CLOSE');
  assert.deepEqual(
    r.log,
    expected([
      HookId.HttpSsnStart,
      HookId.HttpTxnStart,
      HookId.HttpReadRequestHdr,
      HookId.HttpPreRemap,
      HookId.HttpPostRemap,
      HookId.HttpOsDns,
      HookId.HttpSendResponseHdr,
      HookId.HttpTxnClose,
      HookId.HttpSsnClose,
    ]),
  );
});

test('intercepted request: no OS_DNS; the plugin is the origin and the response hooks still run', T, async (t) => {
  const r = recorder();
  const h = await startHost(t, {}, {
    plugins: {
      ...r.plugins,
      icpt: (api) =>
        api.httpHookAdd(HookId.HttpReadRequestHdr, (txn: Txn) => {
          txn.intercept((vc) => {
            vc.once('data', () => vc.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nicp'));
          });
          txn.reenable(Event.HttpContinue);
        }),
    },
  });
  const c = await Conn.open(h.port());
  c.write('GET http://nowhere.invalid/ HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n');
  const res = await c.response();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'icp');
  c.socket.end();
  await waitUntil(() => r.log.some((e) => e.hook === 'SSN_CLOSE' && e.scope === 'session'), 5000, 'SSN_CLOSE');
  assert.deepEqual(
    r.log,
    expected([
      HookId.HttpSsnStart,
      HookId.HttpTxnStart,
      HookId.HttpReadRequestHdr,
      HookId.HttpPreRemap,
      HookId.HttpPostRemap,
      HookId.HttpSendRequestHdr,
      HookId.HttpReadResponseHdr,
      HookId.HttpSendResponseHdr,
      HookId.HttpTxnClose,
      HookId.HttpSsnClose,
    ]),
  );
});

test('a transaction hook added from inside a hook of the same id runs in the same chain, after it', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const log: string[] = [];
  const h = await startHost(t, {}, {
    plugins: {
      p: (api) =>
        api.httpHookAdd(HookId.HttpReadRequestHdr, (txn: Txn) => {
          log.push('global');
          txn.hookAdd(HookId.HttpReadRequestHdr, (tx) => {
            log.push('added');
            tx.reenable(Event.HttpContinue);
          });
          txn.reenable(Event.HttpContinue);
        }),
    },
  });
  const c = await Conn.open(h.port());
  c.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal((await c.response()).status, 200);
  c.close();
  assert.deepEqual(log, ['global', 'added']);
});

test('a CONNECT refused before READ_REQUEST_HDR (bad target) still opens with TXN_START before its TXN_CLOSE', T, async (t) => {
  const r = recorder();
  const h = await startHost(t, {}, { plugins: r.plugins });
  const c = await Conn.open(h.port());
  c.write('CONNECT nowhere HTTP/1.1\r\nHost: nowhere\r\n\r\n');
  assert.equal((await c.response()).status, 400);
  c.close();
  await waitUntil(() => r.log.some((e) => e.hook === 'SSN_CLOSE' && e.scope === 'session'), 5000, 'SSN_CLOSE');
  const hooks = r.log.filter((e) => e.scope === 'global:g1').map((e) => e.hook);
  assert.deepEqual(hooks, ['SSN_START', 'TXN_START', 'SEND_RESPONSE_HDR', 'TXN_CLOSE', 'SSN_CLOSE']);
});
