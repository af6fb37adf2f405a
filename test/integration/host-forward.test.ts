/**
 * The host as an HTTP proxy, as a real `tsproxy` process driven by curl and raw sockets: forward
 * proxying, reverse proxying through remap.config, remap_required, redirects, ip_allow `in`
 * methods, header limits, malformed requests and keep-alive (ats.md 3.3, 3.6; security.md 1, 9).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { curl } from '../helpers/curl.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import type { ConfigDirSpec } from '../helpers/config-dir.js';
import { startTsproxy } from '../helpers/proc.js';
import type { Proxy } from '../helpers/proc.js';
import { httpOrigin } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { requireTool } from '../helpers/tools.js';
import { assertFailure, Conn, exchange, loopbackPorts } from '../host/harness.js';

const T = { timeout: 20_000 };

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** A tsproxy process on `spec` (loopback port 0), stopped after every test. */
async function proxyOn(spec: ConfigDirSpec): Promise<Proxy> {
  const dir = await makeConfigDir({ ...spec, records: { 'http.server_ports': loopbackPorts('http'), ...spec.records } });
  cleanups.push(() => dir.cleanup());
  const p = await startTsproxy(dir.dir);
  cleanups.push(async () => void (await p.stop()));
  return p;
}

let origin: TestServer;
/** Forward proxy (remap_required 0) with a reverse-proxy rule, a redirect, ip_allow methods and a 2 KiB header limit. */
let fwd: Proxy;
/** remap_required 1 with the same rules. */
let strict: Proxy;

before(async () => {
  origin = await httpOrigin((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      const body = `${req.method ?? ''} ${req.url ?? ''} host=${req.headers.host ?? ''}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-origin': 'yes' });
      res.end(body);
    });
  });
  cleanups.push(() => origin.close());
  const remap = `map http://example.test/ http://127.0.0.1:${origin.port}/base/\nredirect http://old.test/ http://new.test/\n`;
  const ipAllow = `ip_allow:
  - apply: in
    ip_addrs: [127.0.0.1, ::1]
    action: set_allow
    methods: [GET, HEAD, CONNECT]
`;
  [fwd, strict] = await Promise.all([
    proxyOn({ records: { 'url_remap.remap_required': 0, 'http.request_header_max_size': 2048 }, remap, ipAllow }),
    proxyOn({ records: { 'url_remap.remap_required': 1 }, remap }),
  ]);
});

const originUrl = (path: string): string => `http://127.0.0.1:${origin.port}${path}`;

test('forward GET through curl -x reaches the origin with an origin-form target', T, async (t: TestContext) => {
  if (!requireTool(t, 'curl')) return;
  const r = await curl(['-x', `http://127.0.0.1:${fwd.port()}`, originUrl('/fwd?q=1')]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-origin'], 'yes');
  assert.equal(r.body.toString(), `GET /fwd?q=1 host=127.0.0.1:${origin.port}\n`);
});

test('reverse proxy: a map rule rewrites the path prefix and the Host (ATS pristine_host_hdr 0)', T, async (t) => {
  if (!requireTool(t, 'curl')) return;
  const direct = await curl(['-H', 'Host: example.test', `http://127.0.0.1:${fwd.port()}/x/y?z`]);
  assert.equal(direct.status, 200, direct.stderr);
  const [line, host] = direct.body.toString().split(' host=');
  assert.equal(line, 'GET /base/x/y?z');
  const proxied = await curl(['-x', `http://127.0.0.1:${fwd.port()}`, 'http://example.test/x']);
  assert.equal(proxied.status, 200, proxied.stderr);
  assert.match(proxied.body.toString(), /^GET \/base\/x host=/);
  assert.equal(host, `127.0.0.1:${origin.port}\n`, 'the origin sees the target host in Host');
});

test('forward proxy: an absolute-form target replaces a different Host header (RFC 9112 3.2.2)', T, async () => {
  const res = await exchange(fwd.port(), `GET ${originUrl('/abs')} HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n`);
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), `GET /abs host=127.0.0.1:${origin.port}\n`);
});

test('remap_required 1: a request no rule matches gets `404 Not Found on Accelerator`; a mapped one passes', T, async () => {
  const res = await exchange(strict.port(), `GET ${originUrl('/')} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
  assertFailure(res, 'HTTP/1.1 404 Not Found on Accelerator', 'destination_not_found');
  const ok = await exchange(strict.port(), 'GET /m HTTP/1.1\r\nHost: example.test\r\n\r\n');
  assert.equal(ok.status, 200);
  assert.match(ok.body.toString(), /^GET \/base\/m host=/);
});

test('a redirect rule answers 301 with Location, without contacting anyone', T, async (t) => {
  if (!requireTool(t, 'curl')) return;
  const r = await curl(['-x', `http://127.0.0.1:${fwd.port()}`, 'http://old.test/a/b?c=d']);
  assert.equal(r.statusLine, 'HTTP/1.1 301 Moved Permanently');
  assert.equal(r.headers['location'], 'http://new.test/a/b?c=d');
});

test('ip_allow `in`: a method the rule does not allow gets `403 Access Denied`; allowed ones pass', T, async (t) => {
  if (!requireTool(t, 'curl')) return;
  const post = await curl(['-x', `http://127.0.0.1:${fwd.port()}`, '--data-binary', 'x', originUrl('/p')]);
  assert.equal(post.statusLine, 'HTTP/1.1 403 Access Denied');
  assert.match(post.headers['proxy-status'] ?? '', /^tsproxy; error=http_request_denied/);
  const head = await curl(['-x', `http://127.0.0.1:${fwd.port()}`, '-I', originUrl('/h')]);
  assert.equal(head.status, 200);
});

test('a request header over request_header_max_size gets 431; the proxy keeps serving', T, async () => {
  const big = `GET ${originUrl('/')} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`;
  const res = await exchange(fwd.port(), big);
  assertFailure(res, 'HTTP/1.1 431 Request Header Fields Too Large', 'http_request_error');
  assert.equal((await exchange(fwd.port(), `GET ${originUrl('/after')} HTTP/1.1\r\nHost: x\r\n\r\n`)).status, 200);
});

for (const [name, bytes] of [
  ['garbage', 'HELLO THERE\r\n\r\n'],
  ['a space before the colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n'],
  ['a NUL in a field', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n'],
] as const) {
  test(`a malformed request (${name}) gets 400 and the connection closes`, T, async () => {
    const c = await Conn.open(fwd.port());
    c.write(bytes);
    const res = await c.response();
    assertFailure(res, 'HTTP/1.1 400 Bad Request', 'http_request_error');
    await c.rest();
    c.close();
  });
}

test('keep-alive: two requests one after the other on one connection, then two pipelined', T, async () => {
  const hostHdr = `127.0.0.1:${origin.port}`;
  const c = await Conn.open(fwd.port());
  for (const path of ['/k1', '/k2']) {
    c.write(`GET ${originUrl(path)} HTTP/1.1\r\nHost: ${hostHdr}\r\n\r\n`);
    const res = await c.response();
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `GET ${path} host=127.0.0.1:${origin.port}\n`);
    assert.notEqual(res.headers['connection'], 'close');
  }
  c.write(`GET ${originUrl('/p1')} HTTP/1.1\r\nHost: ${hostHdr}\r\n\r\nGET ${originUrl('/p2')} HTTP/1.1\r\nHost: ${hostHdr}\r\n\r\n`);
  assert.equal((await c.response()).body.toString(), `GET /p1 host=127.0.0.1:${origin.port}\n`);
  assert.equal((await c.response()).body.toString(), `GET /p2 host=127.0.0.1:${origin.port}\n`);
  assert.equal(c.ended, false, 'the connection stays open');
  c.close();
});

test('hop-by-hop request fields are not forwarded; end-to-end ones are', T, async () => {
  const seen: Record<string, string | string[] | undefined>[] = [];
  const o = await httpOrigin((req, res) => {
    seen.push(req.headers);
    res.end('ok');
  });
  cleanups.push(() => o.close());
  const res = await exchange(
    fwd.port(),
    `GET http://127.0.0.1:${o.port}/ HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nProxy-Authorization: Basic Zm9v\r\nX-Keep: 2\r\n\r\n`,
  );
  assert.equal(res.status, 200);
  assert.equal(seen[0]?.['x-keep'], '2');
  assert.equal(seen[0]?.['x-drop'], undefined);
  assert.equal(seen[0]?.['proxy-authorization'], undefined);
});
