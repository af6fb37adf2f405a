/**
 * Third-party plugins (ats.md 2.1, 2.4, 2.5): the example plugins loaded by path from
 * plugin.config in a real tsproxy process, an Intercept answering a CONNECT, a Connect
 * (httpConnect) plugin whose internal transaction is not re-intercepted, and load failures that
 * name plugin.config's line.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Event, HookId, TxnCntl } from '../../host/api/index.js';
import type { Api, VConn } from '../../host/api/index.js';
import { makeApi } from '../../host/core/api-impl.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import type { ConfigDirSpec } from '../helpers/config-dir.js';
import { curl } from '../helpers/curl.js';
import { BUILD_ROOT, MAIN_JS } from '../helpers/paths.js';
import { startTsproxy, verifyConfig } from '../helpers/proc.js';
import type { Proxy } from '../helpers/proc.js';
import { echoServer, httpOrigin } from '../helpers/servers.js';
import { requireTool, run } from '../helpers/tools.js';
import { assertFailure, Conn, exchange, loopbackPorts, startHost } from '../host/harness.js';

const T = { timeout: 20_000 };
const HEALTH_CHECK = join(BUILD_ROOT, 'examples', 'plugins', 'health-check.js');
const ADD_HEADER = join(BUILD_ROOT, 'examples', 'plugins', 'add-header.js');
const API_URL = pathToFileURL(join(BUILD_ROOT, 'host', 'api', 'index.js')).href;

/** A config dir for a tsproxy process (loopback port 0), removed after the test. */
async function configDir(t: TestContext, spec: ConfigDirSpec): Promise<string> {
  const dir = await makeConfigDir({ ...spec, records: { 'http.server_ports': loopbackPorts('http'), ...spec.records } });
  t.after(() => dir.cleanup());
  return dir.dir;
}

async function proxyWith(t: TestContext, spec: ConfigDirSpec): Promise<Proxy> {
  return startTsproxy(await configDir(t, spec), { t });
}

// ---------------------------------------------------------------- the example plugins

test('health-check and add-header by absolute path: /_health is answered here; every response gets the header', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const p = await proxyWith(t, {
    records: { 'url_remap.remap_required': 1 },
    remap: `map http://site.test/ http://127.0.0.1:${origin.port}/\n`,
    pluginConfig: `${HEALTH_CHECK}\n${ADD_HEADER}\n`,
  });
  const health = await exchange(p.port(), 'GET /_health HTTP/1.1\r\nHost: anything.invalid\r\n\r\n');
  assert.equal(health.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(health.body.toString(), 'ok\n');
  assert.equal(health.headers['x-tsproxy-example'], '1');
  const proxied = await exchange(p.port(), 'GET http://nowhere.invalid/_health?probe=1 HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n');
  assert.equal(proxied.body.toString(), 'ok\n', 'absolute form, no remap rule, no DNS');

  const site = await exchange(p.port(), 'GET /page HTTP/1.1\r\nHost: site.test\r\n\r\n');
  assert.equal(site.status, 200);
  assert.equal(site.body.toString(), 'GET /page\n');
  assert.equal(site.headers['x-tsproxy-example'], '1');
  const post = await exchange(p.port(), 'POST /_health HTTP/1.1\r\nHost: other.test\r\nContent-Length: 0\r\n\r\n');
  assert.equal(post.statusLine, 'HTTP/1.1 404 Not Found on Accelerator', 'only GET is answered; remap_required applies');
  assert.equal(post.headers['x-tsproxy-example'], '1', 'the proxy error reply passes SEND_RESPONSE_HDR too');
});

test('the example plugins by path relative to plugin_dir, with arguments, driven by curl', T, async (t) => {
  if (!requireTool(t, 'curl')) return;
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const p = await proxyWith(t, {
    records: { 'url_remap.remap_required': 0, 'plugin.plugin_dir': BUILD_ROOT },
    pluginConfig: '# the example plugins\nexamples/plugins/health-check.js\nexamples/plugins/add-header.js X-Via-Example "yes please"\n',
  });
  const health = await curl([`http://127.0.0.1:${p.port()}/_health`]);
  assert.equal(health.status, 200, health.stderr);
  assert.equal(health.body.toString(), 'ok\n');
  const r = await curl(['-x', `http://127.0.0.1:${p.port()}`, `http://127.0.0.1:${origin.port}/x`]);
  assert.equal(r.status, 200, r.stderr);
  assert.equal(r.headers['x-via-example'], 'yes please');
  assert.equal(r.headers['x-tsproxy-example'], undefined);
});

test('--verify-config rejects bad example-plugin arguments with plugin.config:LINE:COL', T, async (t) => {
  const dir = await configDir(t, { pluginConfig: `${HEALTH_CHECK} extra\n${ADD_HEADER} Only-A-Name\n` });
  const r = await verifyConfig(dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^plugin\.config:1:1: health-check: unexpected argument 'extra'/m);
  assert.match(r.stderr, /^plugin\.config:2:1: add-header: expected no arguments or NAME VALUE, got 1$/m);
});

// ---------------------------------------------------------------- load failures

test('an unknown plugin: --verify-config prints plugin.config:LINE:COL and exits 1; start exits 1 too', T, async (t) => {
  const dir = await configDir(t, { pluginConfig: `# comment\n${ADD_HEADER}\nno_such_plugin.so arg\n` });
  const r = await verifyConfig(dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^plugin\.config:3:1: unknown plugin 'no_such_plugin\.so'/m);
  const start = await run(process.execPath, [MAIN_JS, '--config-dir', dir], { timeoutMs: 10_000 });
  assert.equal(start.code, 1, start.stderr);
  assert.match(start.stderr, /^plugin\.config:3:1: unknown plugin/m);
  assert.doesNotMatch(start.stderr, /listening on/);
});

test('a plugin whose init throws: start fails naming plugin.config:LINE, exit 1, no listener', T, async (t) => {
  const dir = await configDir(t, {
    pluginConfig: `${ADD_HEADER}\n./thrower.mjs\n`,
    records: { 'plugin.plugin_dir': '.' },
    files: { 'thrower.mjs': `export default { info: { name: 'thrower', vendor: 't', email: 't@t.invalid' }, init() { throw new Error('boom at init'); } };\n` },
  });
  const r = await run(process.execPath, [MAIN_JS, '--config-dir', dir], { timeoutMs: 10_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^plugin\.config:2:1: plugin 'thrower' failed to initialise: boom at init$/m);
  assert.doesNotMatch(r.stderr, /listening on|at init \(/, 'one line, no stack trace');
});

test('a plugin hook that throws fails its transaction with a 5xx; the process keeps serving', T, async (t) => {
  const dir = await configDir(t, {
    records: { 'url_remap.remap_required': 0, 'plugin.plugin_dir': '.' },
    pluginConfig: `${HEALTH_CHECK}\nbuggy.mjs\n`,
    files: {
      'buggy.mjs': [
        `import { Event, HookId } from '${API_URL}';`,
        `export default { info: { name: 'buggy', vendor: 't', email: 't@t.invalid' }, init(api) {`,
        `  api.httpHookAdd(HookId.HttpReadRequestHdr, (txn) => {`,
        `    if (txn.clientReq.url.includes('/boom')) throw new Error('plugin bug');`,
        `    txn.reenable(Event.HttpContinue);`,
        `  });`,
        `} };`,
        '',
      ].join('\n'),
    },
  });
  const p = await startTsproxy(dir, { t });
  for (let i = 0; i < 3; i++) {
    const boom = await exchange(p.port(), 'GET http://x.invalid/boom HTTP/1.1\r\nHost: x.invalid\r\n\r\n');
    assertFailure(boom, 'HTTP/1.1 500 INKApi Error', 'proxy_internal_error');
    assert.equal((await exchange(p.port(), 'GET /_health HTTP/1.1\r\nHost: h\r\n\r\n')).status, 200);
  }
  await p.waitForLine(/PXY_ERR_HOOK_THREW.*buggy.*plugin bug/);
});

// ---------------------------------------------------------------- Intercept for a CONNECT

/** The plugin is the CONNECT's origin: it reads the request, answers per host, then upper-cases the tunnel. */
function connectInterceptor(seen: string[]): (api: Api) => void {
  return (api) =>
    api.httpHookAdd(HookId.HttpReadRequestHdr, (txn) => {
      const host = txn.clientReq.method === 'CONNECT' ? txn.clientReq.host : null;
      if (host?.endsWith('.intercept.test')) txn.intercept((vc) => serveConnect(vc, host, seen));
      txn.reenable(Event.HttpContinue);
    });
}

function serveConnect(vc: VConn, host: string, seen: string[]): void {
  let head = Buffer.alloc(0);
  let open = false;
  vc.on('error', () => vc.destroy());
  vc.on('end', () => vc.end());
  vc.on('data', (chunk: Buffer) => {
    let data = chunk;
    if (!open) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      seen.push(head.subarray(0, end).toString('latin1').split('\r\n')[0]!);
      if (host === 'vanish.intercept.test') return void vc.destroy();
      if (host === 'refuse.intercept.test') return void vc.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nrefused');
      open = true;
      vc.write('HTTP/1.1 200 OK\r\n\r\n');
      data = head.subarray(end + 4);
    }
    if (data.length) vc.write(data.toString('latin1').toUpperCase(), 'latin1');
  });
}

test('an Intercept answers a CONNECT: 200 then tunnel data both ways; a refusal and a vanished plugin reach the client', T, async (t) => {
  const seen: string[] = [];
  const h = await startHost(t, {}, { plugins: { icpt: connectInterceptor(seen) } });
  const c = await Conn.open(h.port());
  c.write('CONNECT up.intercept.test:443 HTTP/1.1\r\nHost: up.intercept.test:443\r\n\r\nearly ');
  assert.equal((await c.response({ connect: true })).statusLine, 'HTTP/1.1 200 OK');
  c.write('and late');
  assert.equal((await c.bytes(14)).toString(), 'EARLY AND LATE');
  c.socket.end();
  await c.rest();
  assert.deepEqual(seen, ['CONNECT up.intercept.test:443 HTTP/1.1'], 'the plugin read the client request; early bytes were not part of it');

  const refused = await exchange(h.port(), 'CONNECT refuse.intercept.test:443 HTTP/1.1\r\nHost: refuse.intercept.test:443\r\n\r\n', { connect: true });
  assert.equal(refused.statusLine, 'HTTP/1.1 403 Forbidden');
  assert.equal(refused.body.toString(), 'refused');

  const vanished = await exchange(h.port(), 'CONNECT vanish.intercept.test:443 HTTP/1.1\r\nHost: vanish.intercept.test:443\r\n\r\n', { connect: true });
  assertFailure(vanished, 'HTTP/1.1 502 Bad Gateway', 'connection_terminated');
});

// ---------------------------------------------------------------- Connect (httpConnect)

interface Seen {
  readonly url: string;
  readonly isInternal: boolean;
  readonly tag: string | null;
  readonly id: number | null;
  readonly addr: string;
}

/**
 * A plugin that intercepts `/fanout` and answers it with what an internal GET through the host
 * (api.httpConnect) returns. Its READ_REQUEST_HDR hook sees the internal transaction too and
 * must not intercept it again.
 */
function fanout(originPort: number, seen: Seen[]): (api: Api) => void {
  return (api) =>
    api.httpHookAdd(HookId.HttpReadRequestHdr, (txn) => {
      seen.push({ url: txn.clientReq.url, isInternal: txn.isInternal, tag: txn.pluginTag, id: txn.pluginId, addr: txn.clientAddr.address });
      if (!txn.isInternal && txn.clientReq.url.endsWith('/fanout')) {
        txn.cntlSet(TxnCntl.SkipRemapping, true);
        txn.intercept((vc) => vc.once('data', () => relayInner(api, originPort, vc)));
      }
      txn.reenable(Event.HttpContinue);
    });
}

function relayInner(api: Api, originPort: number, vc: VConn): void {
  const inner = api.httpConnect({ addr: { address: '127.0.0.1', port: 40000, family: 'IPv4' }, tag: 'fanout', id: 7 });
  const parts: Buffer[] = [];
  inner.on('data', (b: Buffer) => parts.push(b));
  inner.on('error', () => vc.destroy());
  inner.on('end', () => {
    const all = Buffer.concat(parts);
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
    vc.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length + 7}\r\n\r\ninner: `), body]));
  });
  inner.write(`GET http://127.0.0.1:${originPort}/inner HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nConnection: close\r\n\r\n`);
}

test('a Connect plugin: an internal GET through the host; the internal transaction is not re-intercepted', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const seen: Seen[] = [];
  const h = await startHost(t, {}, { plugins: { fanout: fanout(origin.port, seen) } });
  const res = await exchange(h.port(), 'GET http://front.test/fanout HTTP/1.1\r\nHost: front.test\r\n\r\n');
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'inner: GET /inner\n');
  assert.deepEqual(seen, [
    { url: 'http://front.test/fanout', isInternal: false, tag: null, id: null, addr: '127.0.0.1' },
    { url: `http://127.0.0.1:${origin.port}/inner`, isInternal: true, tag: 'fanout', id: 7, addr: '127.0.0.1' },
  ]);
});

test('httpConnect carries a CONNECT: tunnel bytes follow the 200', T, async (t) => {
  const echo = await echoServer();
  t.after(() => echo.close());
  const h = await startHost(t, {});
  const api = makeApi('connector', h.host.ctx);
  const c = new Conn(api.httpConnect({ addr: { address: '127.0.0.1', port: 40001, family: 'IPv4' } }));
  c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
  assert.equal((await c.response({ connect: true })).status, 200);
  c.write('via a virtual connection');
  assert.equal((await c.bytes(24)).toString(), 'via a virtual connection');
  c.close();
});

test('httpConnect from an address ip_allow does not allow: the connection is closed unanswered', T, async (t) => {
  const h = await startHost(t, { ipAllow: 'ip_allow:\n  - apply: in\n    ip_addrs: 127.0.0.1\n    action: set_allow\n' });
  const api = makeApi('connector', h.host.ctx);
  const c = new Conn(api.httpConnect({ addr: { address: '192.0.2.1', port: 1, family: 'IPv4' } }));
  c.write('GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await c.rest()).length, 0);
});
