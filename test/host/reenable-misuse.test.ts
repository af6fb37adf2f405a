/**
 * Plugin API misuse fails one transaction, never the process (ats.md 2.3 and 7, security.md 38):
 * reenable twice or never, a hook that returns a promise or throws, HttpError with and without
 * statusSet, hooks added after start, intercept outside READ_REQUEST_HDR.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { ErrorCode, Event, HookId, ProxyError, VConnHookId } from '../../host/api/index.js';
import type { Hook, Txn } from '../../host/api/index.js';
import { makeApi } from '../../host/core/api-impl.js';
import { httpOrigin } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { Conn, exchange, getRequest, startHost, waitUntil } from './harness.js';
import type { RawResponse } from './harness.js';

const T = { timeout: 15_000 };
const DEADLINE_MS = 300;

/** A host whose READ_REQUEST_HDR hook is `hook` for paths starting `/bad`, and a plain continue otherwise. */
async function hostWith(t: TestContext, hook: Hook): Promise<{ port: number; origin: TestServer }> {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const h = await startHost(t, {}, {
    hookDeadlineMs: DEADLINE_MS,
    plugins: {
      misuse: (api) =>
        api.httpHookAdd(HookId.HttpReadRequestHdr, (txn, ev) => {
          // Pass on what the hook returns: the host must see a promise.
          if (txn.clientReq.url.includes('/bad')) return hook(txn, ev);
          txn.reenable(Event.HttpContinue);
        }),
    },
  });
  return { port: h.port(), origin };
}

function get(port: number, origin: TestServer, path: string): Promise<RawResponse> {
  return exchange(port, getRequest(`http://127.0.0.1:${origin.port}${path}`, `127.0.0.1:${origin.port}`));
}

/** The transaction failed with a 5xx naming `code`; the next request is served. */
async function failsThenServes(port: number, origin: TestServer, code: string, status = 500, reason = 'INKApi Error'): Promise<void> {
  const res = await get(port, origin, '/bad');
  assert.equal(res.statusLine, `HTTP/1.1 ${status} ${reason}`);
  assert.match(res.headers['proxy-status'] ?? '', new RegExp(`^tsproxy; error=proxy_internal_error; details="${code}"`));
  assert.equal(res.body.length, Number(res.headers['content-length']));
  const ok = await get(port, origin, '/good');
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), 'GET /good\n');
}

test('a second reenable throws PXY_ERR_TXN_REENABLE_TWICE; the first one stands', T, async (t) => {
  let second: unknown = null;
  const { port, origin } = await hostWith(t, (txn) => {
    txn.reenable(Event.HttpContinue);
    try {
      txn.reenable(Event.HttpContinue);
    } catch (err) {
      second = err;
    }
  });
  const res = await get(port, origin, '/bad');
  assert.equal(res.status, 200);
  assert.ok(second instanceof ProxyError);
  assert.equal(second.code, ErrorCode.TXN_REENABLE_TWICE);
});

test('reenable with an event other than HttpContinue / HttpError throws PXY_ERR_HOOK_BAD_ID and does not resume', T, async (t) => {
  let err: unknown = null;
  const { port, origin } = await hostWith(t, (txn) => {
    try {
      txn.reenable(Event.Immediate as never);
    } catch (e) {
      err = e;
    }
    txn.reenable(Event.HttpContinue);
  });
  assert.equal((await get(port, origin, '/bad')).status, 200);
  assert.equal((err as ProxyError | null)?.code, ErrorCode.HOOK_BAD_ID);
});

test('no reenable before the deadline fails that transaction only (PXY_ERR_HOOK_TIMEOUT); a late reenable throws', T, async (t) => {
  let held: Txn | null = null;
  const { port, origin } = await hostWith(t, (txn) => {
    held = txn;
  });
  const started = Date.now();
  await failsThenServes(port, origin, ErrorCode.HOOK_TIMEOUT);
  assert.ok(Date.now() - started < DEADLINE_MS + 2000, 'the 5xx comes at the hook deadline');
  assert.throws(() => held!.reenable(Event.HttpContinue), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.TXN_REENABLE_TWICE);
});

test('a hook that returns a promise fails its transaction with PXY_ERR_HOOK_ASYNC', T, async (t) => {
  const { port, origin } = await hostWith(t, (async (txn: Txn) => {
    await Promise.resolve();
    txn.reenable(Event.HttpContinue);
  }) as Hook);
  await failsThenServes(port, origin, ErrorCode.HOOK_ASYNC);
});

test('api.asyncHook is the supported async form: resolve continues, reject fails with 500', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const h = await startHost(t, {}, {
    plugins: {
      asy: (api) =>
        api.httpHookAdd(
          HookId.HttpReadRequestHdr,
          api.asyncHook(async (txn) => {
            await new Promise((r) => setTimeout(r, 20));
            if (txn.clientReq.url.includes('/bad')) throw new Error('nope');
          }),
        ),
    },
  });
  assert.equal((await get(h.port(), origin, '/good')).status, 200);
  const res = await get(h.port(), origin, '/bad');
  assert.equal(res.statusLine, 'HTTP/1.1 500 INKApi Error');
});

test('a throwing hook fails its transaction with PXY_ERR_HOOK_THREW; the host keeps serving', T, async (t) => {
  const { port, origin } = await hostWith(t, () => {
    throw new TypeError('plugin bug');
  });
  await failsThenServes(port, origin, ErrorCode.HOOK_THREW);
  await failsThenServes(port, origin, ErrorCode.HOOK_THREW);
});

test('HttpError gives `500 INKApi Error`', T, async (t) => {
  const { port, origin } = await hostWith(t, (txn) => txn.reenable(Event.HttpError));
  await failsThenServes(port, origin, 'HttpError');
});

test('HttpError after statusSet(403, "Nope") gives `403 Nope`', T, async (t) => {
  const { port, origin } = await hostWith(t, (txn) => {
    txn.statusSet(403, 'Nope');
    txn.reenable(Event.HttpError);
  });
  await failsThenServes(port, origin, 'HttpError', 403, 'Nope');
});

test('HttpError at SEND_RESPONSE_HDR replaces the origin response with the error reply', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const h = await startHost(t, {}, {
    plugins: {
      p: (api) =>
        api.httpHookAdd(HookId.HttpSendResponseHdr, (txn) => {
          if (txn.clientResp?.status === 200) txn.statusSet(502, 'Refused By Plugin');
          txn.reenable(txn.clientResp?.status === 200 ? Event.HttpError : Event.HttpContinue);
        }),
    },
  });
  const res = await get(h.port(), origin, '/x');
  assert.equal(res.statusLine, 'HTTP/1.1 502 Refused By Plugin');
  assert.equal(res.body.length, Number(res.headers['content-length']));
});

test('an SSN_START hook that fails closes the connection without a reply; the next session works', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  let n = 0;
  const h = await startHost(t, {}, {
    plugins: {
      p: (api) =>
        api.httpHookAdd(HookId.HttpSsnStart, (ssn) => {
          if (n++ === 0) throw new Error('first session refused');
          ssn.reenable(Event.HttpContinue);
        }),
    },
  });
  const c = await Conn.open(h.port());
  c.write(getRequest(`http://127.0.0.1:${origin.port}/`, 'x'));
  assert.equal((await c.rest()).length, 0);
  assert.equal((await get(h.port(), origin, '/next')).status, 200);
});

test('httpHookAdd / vconnHookAdd after start throw PXY_ERR_HOOK_AFTER_START', T, async (t) => {
  const h = await startHost(t, {});
  const api = makeApi('late', h.host.ctx);
  const noop: Hook = (txn) => txn.reenable(Event.HttpContinue);
  assert.throws(() => api.httpHookAdd(HookId.HttpReadRequestHdr, noop), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.HOOK_AFTER_START);
  assert.throws(
    () => api.vconnHookAdd(VConnHookId.SslClientHello, (vc) => vc.reenable()),
    (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.HOOK_AFTER_START,
  );
});

test('an unknown hook id throws PXY_ERR_HOOK_BAD_ID at registration', T, async (t) => {
  await startHost(t, {}, {
    plugins: {
      p: (api) => {
        assert.throws(
          () => api.httpHookAdd(3_000 as never, (txn) => txn.reenable(Event.HttpContinue)),
          (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.HOOK_BAD_ID,
        );
      },
    },
  });
});

test('intercept outside READ_REQUEST_HDR, or twice, throws PXY_ERR_TXN_INTERCEPT_STATE; the transaction carries on', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const errors: Record<string, unknown> = {};
  const tryIntercept = (txn: Txn, what: string): void => {
    try {
      txn.intercept((vc) => vc.destroy());
    } catch (e) {
      errors[what] = e;
    }
  };
  const h = await startHost(t, {}, {
    plugins: {
      p: (api) => {
        api.httpHookAdd(HookId.HttpTxnStart, (txn) => {
          tryIntercept(txn, 'TXN_START');
          txn.reenable(Event.HttpContinue);
        });
        api.httpHookAdd(HookId.HttpReadRequestHdr, (txn) => {
          if (txn.clientReq.url.includes('/twice')) {
            txn.intercept((vc) => vc.once('data', () => vc.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nic')));
            tryIntercept(txn, 'twice');
          }
          txn.reenable(Event.HttpContinue);
        });
        api.httpHookAdd(HookId.HttpPreRemap, (txn) => {
          tryIntercept(txn, 'PRE_REMAP');
          txn.reenable(Event.HttpContinue);
        });
        api.httpHookAdd(HookId.HttpSendResponseHdr, (txn) => {
          tryIntercept(txn, 'SEND_RESPONSE_HDR');
          txn.reenable(Event.HttpContinue);
        });
      },
    },
  });
  const res = await get(h.port(), origin, '/x');
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'GET /x\n', 'no intercept took effect');
  const twice = await get(h.port(), origin, '/twice');
  assert.equal(twice.body.toString(), 'ic', 'the first intercept stands');
  await waitUntil(() => Object.keys(errors).length === 4, 2000, 'four intercept errors');
  for (const what of ['TXN_START', 'PRE_REMAP', 'SEND_RESPONSE_HDR', 'twice']) {
    const e = errors[what];
    assert.ok(e instanceof ProxyError, what);
    assert.equal(e.code, ErrorCode.TXN_INTERCEPT_STATE, what);
  }
});
