/**
 * The host as an HTTP proxy, as a real `tsproxy` process driven by curl and raw sockets: forward
 * proxying, reverse proxying through remap.config, remap_required, redirects, ip_allow `in`
 * methods, header limits, malformed requests and keep-alive (ats.md 3.3, 3.6; security.md 1, 9).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { curl } from '../helpers/curl.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import type { ConfigDir } from '../helpers/config-dir.js';
import { startTsproxy } from '../helpers/proc.js';
import type { Proxy } from '../helpers/proc.js';
import { httpOrigin } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { has } from '../helpers/tools.js';
import { Conn, exchange } from '../host/harness.js';
import type { RawResponse } from '../host/harness.js';

const T = { timeout: 20_000 };
const NO_CURL = has('curl') ? false : 'curl not installed: these tests drive the proxy with it';

const IP_ALLOW = `ip_allow:
  - apply: in
    ip_addrs: [127.0.0.1, ::1]
    action: set_allow
    methods: [GET, HEAD, CONNECT]
`;

/** Every error reply carries a Proxy-Status naming tsproxy and the error type, and a body of Content-Length bytes. */
function assertFailure(res: RawResponse, statusLine: string, type: string): void {
  assert.equal(res.statusLine, statusLine);
  assert.match(res.headers['proxy-status'] ?? '', new RegExp(`^tsproxy; error=${type}(;|$)`));
  assert.equal(res.body.length, Number(res.headers['content-length']));
}

/** Origin that answers `<METHOD> <url> host=<Host>` and counts its requests. */
async function echoOrigin(): Promise<TestServer & { requests: () => number }> {
  let n = 0;
  const o = await httpOrigin((req: IncomingMessage, res) => {
    n++;
    req.resume();
    req.on('end', () => {
      const body = `${req.method ?? ''} ${req.url ?? ''} host=${req.headers.host ?? ''}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return { ...o, requests: () => n };
}

async function start(dir: ConfigDir, register: (f: () => Promise<void>) => void): Promise<Proxy> {
  const p = await startTsproxy(dir.dir);
  register(async () => {
    await p.stop();
    dir.cleanup();
  });
  return p;
}

describe('forward and reverse proxying (remap_required 0)', { skip: NO_CURL }, () => {
  let origin: TestServer & { requests: () => number };
  let proxy: Proxy;
  let port = 0;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    origin = await echoOrigin();
    cleanups.push(() => origin.close());
    const dir = await makeConfigDir({
      records: {
        'http.server_ports': '0',
        'url_remap.remap_required': 0,
        'http.request_header_max_size': 2048,
      },
      remap: [
        `map http://example.test/ http://127.0.0.1:${origin.port}/base/`,
        'redirect http://old.test/ http://new.test/',
        '',
      ].join('\n'),
      ipAllow: IP_ALLOW,
    });
    proxy = await start(dir, (f) => cleanups.unshift(f));
    port = proxy.port('http');
  });
  // node:test runs `after` hooks of a describe even when `before` failed half-way.
  test.after?.(() => undefined);
  describe('teardown', () => {
    test('(stops the proxy and the origin)', async () => {
      for (const f of cleanups) await f();
    });
  });
});
