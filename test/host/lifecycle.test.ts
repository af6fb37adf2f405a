/**
 * Stopping and freeing (security.md 26 and 37): stop(0) force-closes what is open, stop(drainMs)
 * lets a request in flight finish, SIGTERM exits 0 by the drain deadline even with an idle
 * keep-alive client, and connections a client closed are freed at once.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { makeConfigDir } from '../helpers/config-dir.js';
import { makePki } from '../helpers/pki.js';
import { startTsproxy } from '../helpers/proc.js';
import { echoServer, httpOrigin } from '../helpers/servers.js';
import { has } from '../helpers/tools.js';
import { Conn, getRequest, loopbackPorts, startHost, stopWithin, waitUntil } from './harness.js';

const T = { timeout: 20_000 };

/** Connections the listener still holds. */
function connections(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

test('stop(0) resolves at once and closes an idle keep-alive client', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const h = await startHost(t, { records: { 'http.transaction_no_activity_timeout_in': 120 } });
  const c = await Conn.open(h.port());
  try {
    c.write(getRequest(`http://127.0.0.1:${origin.port}/`, `127.0.0.1:${origin.port}`));
    assert.equal((await c.response()).status, 200);
    const started = Date.now();
    await stopWithin(h.host, 0, 2000);
    assert.ok(Date.now() - started < 1000, `stop(0) took ${Date.now() - started} ms`);
    await c.until(() => c.closed, 2000, 'the client to be closed');
  } finally {
    c.close();
  }
});

test('stop(drainMs) lets a request in flight finish, refuses new connections, then resolves', T, async (t) => {
  const origin = await httpOrigin((req, res) => setTimeout(() => res.end(`slow ${req.url ?? ''}`), 300));
  t.after(() => origin.close());
  const h = await startHost(t, {});
  const c = await Conn.open(h.port());
  c.write(getRequest(`http://127.0.0.1:${origin.port}/slow`, `127.0.0.1:${origin.port}`));
  await waitUntil(() => h.host.sm.openSessions === 1, 2000, 'the session');
  const stopping = h.host.stop(3000);
  const refused = net.connect({ port: h.port(), host: '127.0.0.1' });
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
  const res = await c.response();
  assert.equal(res.body.toString(), 'slow /slow');
  c.close();
  await stopping;
});

test('SIGTERM: tsproxy exits 0 by the drain deadline although a keep-alive client stays connected', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const dir = await makeConfigDir({
    records: { 'http.server_ports': loopbackPorts('http'), 'url_remap.remap_required': 0, 'http.transaction_no_activity_timeout_in': 120 },
  });
  t.after(() => dir.cleanup());
  const p = await startTsproxy(dir.dir, { t });
  const c = await Conn.open(p.port('http'));
  t.after(() => c.close());
  c.write(getRequest(`http://127.0.0.1:${origin.port}/`, `127.0.0.1:${origin.port}`));
  assert.equal((await c.response()).status, 200);
  const started = Date.now();
  const status = await p.stop('SIGTERM', 9000);
  assert.deepEqual(status, { code: 0, signal: null }, p.output());
  assert.ok(Date.now() - started < 8000, `exit took ${Date.now() - started} ms (drain deadline 5 s)`);
});

test('sessions and tunnels a client closed are freed (open sessions and listener connections back to 0)', T, async (t) => {
  const origin = await httpOrigin();
  const echo = await echoServer();
  t.after(() => Promise.all([origin.close(), echo.close()]));
  const h = await startHost(t, {});
  const server = h.bound[0]!.server;
  for (let i = 0; i < 5; i++) {
    const c = await Conn.open(h.port());
    c.write(getRequest(`http://127.0.0.1:${origin.port}/${i}`, `127.0.0.1:${origin.port}`));
    assert.equal((await c.response()).status, 200);
    const tun = await Conn.open(h.port());
    tun.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\nabc`);
    assert.equal((await tun.response({ connect: true })).status, 200);
    assert.equal((await tun.bytes(3)).toString(), 'abc');
    c.close();
    tun.close();
  }
  await waitUntil(() => h.host.sm.openSessions === 0, 3000, 'every session to close');
  assert.equal(await connections(server), 0);
});

// Known gap: once Node's TLS server owns the socket's handle, a client FIN before the handshake
// completes is only noticed at proxy.config.ssl.handshake_timeout_in (default 30 s).
test('a TLS client that disconnects during the handshake (its Finished unsent) is freed at once, not at handshake_timeout_in', { ...T, skip: has('openssl') ? false : 'openssl not installed', todo: 'freed only at handshake_timeout_in' }, async (t) => {
  const pki = await makePki();
  const cert = await pki.server('a.test');
  const h = await startHost(t, {
    records: { 'http.server_ports': loopbackPorts('ssl'), 'ssl.handshake_timeout_in': 6 },
    sslMulticert: `dest_ip=* ssl_cert_name=${cert.cert} ssl_key_name=${cert.key}\n`,
  });
  const server = h.bound[0]!.server;
  const s = tls.connect({ port: h.port('ssl'), host: '127.0.0.1', servername: 'a.test', ca: readFileSync(pki.ca) });
  await once(s, 'secureConnect');
  // TLS 1.3: the client is done, but destroy() drops its Finished: the server sees EOF mid-handshake.
  s.destroy();
  const deadline = Date.now() + 2000;
  let n = await connections(server);
  while (n > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    n = await connections(server);
  }
  assert.equal(n, 0, 'the listener still holds the connection 2 s after the client left');
});
