/**
 * CONNECT tunnels through the host, on real sockets (security.md 4 cases 4-5, 7-8, 10-13, 15-17,
 * 21-22; ats.md 7): byte-exact relay, pipelined bytes, every refusal with its status line and its
 * Proxy-Status, no dial when ip_allow denies, `CONNECT https://` under each verify policy and
 * with client certificates, half-close, and the host serving on after every failure.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { makePki } from '../helpers/pki.js';
import type { CertPair, Pki } from '../helpers/pki.js';
import { echoServer, sinkServer, tlsOrigin } from '../helpers/servers.js';
import type { TestServer, TlsOrigin } from '../helpers/servers.js';
import { has } from '../helpers/tools.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import { startTsproxy } from '../helpers/proc.js';
import { assertFailure, Conn, loopbackPorts, startHost, waitUntil } from '../host/harness.js';
import type { RawResponse, StartedHost } from '../host/harness.js';

const T = { timeout: 20_000 };
const NO_OPENSSL = has('openssl') ? false : 'openssl not installed: the test PKI is made with it';

const HOSTS = '127.0.0.1 good.test wrong.test\n127.0.0.2 denied.test\n';
/** Loopback clients may do anything; 127.0.0.2 and ::1 are forbidden destinations. */
const IP_ALLOW = `ip_allow:
  - apply: in
    ip_addrs: [127.0.0.1, ::1]
    action: set_allow
  - apply: out
    ip_addrs: [127.0.0.2, ::1]
    action: set_deny
`;

/**
 * Send `CONNECT target` (plus `extra` header lines, and `after` bytes in the same write); read the
 * reply (a refusal with its body). On a 2xx the connection is the tunnel.
 */
async function connect(port: number, target: string, opts: { extra?: string; after?: Buffer | string } = {}): Promise<{ c: Conn; res: RawResponse }> {
  const c = await Conn.open(port);
  const head = Buffer.from(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${opts.extra ?? ''}\r\n`, 'latin1');
  c.write(Buffer.concat([head, Buffer.from(opts.after ?? '')]));
  const res = await c.response({ connect: true });
  if (res.status >= 300) c.close();
  return { c, res };
}

/** A CONNECT to `echo` works: the host survived whatever came before. */
async function assertServes(port: number, echo: TestServer): Promise<void> {
  const { c, res } = await connect(port, `127.0.0.1:${echo.port}`);
  assert.equal(res.status, 200);
  c.write('still there?');
  assert.equal((await c.bytes(12)).toString(), 'still there?');
  c.close();
}

/** A TCP server that counts connections (to prove "no dial"). */
async function counter(host: string): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const s = net.createServer((c) => {
    n++;
    c.destroy();
  });
  await new Promise<void>((r) => s.listen(0, host, r));
  return { port: (s.address() as AddressInfo).port, count: () => n, close: () => new Promise((r) => s.close(() => r())) };
}

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

let echo: TestServer;
before(async () => {
  echo = await echoServer();
});
after(() => echo.close());

async function mainHost(t: TestContext, records: Record<string, unknown> = {}): Promise<StartedHost> {
  return startHost(t, { records: { 'http.server_ports': loopbackPorts('http', 'blind'), 'http.connect_ports': '1024-65535', ...records }, hosts: HOSTS, ipAllow: IP_ALLOW });
}

test('CONNECT to a TCP echo relays 1 MiB byte-exactly', T, async (t) => {
  const h = await mainHost(t);
  const { c, res } = await connect(h.port('http'), `127.0.0.1:${echo.port}`);
  assert.equal(res.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(res.headers['content-length'], undefined);
  const data = randomBytes(1 << 20);
  c.write(data);
  assert.ok((await c.bytes(data.length, 10_000)).equals(data));
  c.close();
});

test('bytes pipelined after the CONNECT header are relayed, in order, after the 200', T, async (t) => {
  const h = await mainHost(t);
  const early = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]), randomBytes(3000)]);
  const { c, res } = await connect(h.port('http'), `127.0.0.1:${echo.port}`, { after: early });
  assert.equal(res.status, 200);
  c.write('late');
  assert.ok((await c.bytes(early.length + 4)).equals(Buffer.concat([early, Buffer.from('late')])));
  c.close();
});

test('two CONNECTs pipelined: the second is tunnel payload, never parsed', T, async (t) => {
  const h = await mainHost(t);
  const second = 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n';
  const { c, res } = await connect(h.port('http'), `127.0.0.1:${echo.port}`, { after: second });
  assert.equal(res.status, 200);
  assert.equal((await c.bytes(second.length)).toString(), second);
  c.close();
});

test('a CONNECT on a `blind` port tunnels; a GET there gets 405', T, async (t) => {
  const h = await mainHost(t);
  await assertServes(h.port('blind'), echo);
  const c = await Conn.open(h.port('blind'));
  c.write('GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assertFailure(await c.response(), 'HTTP/1.1 405 Method Not Allowed', 'http_request_denied');
  c.close();
});

const BAD_TARGETS = ['host', 'host:', 'host:0', 'host:65536', '/p', 'u@h:443', '[::1', 'http://h:443', 'host:443/x', ':443'];
for (const target of BAD_TARGETS) {
  test(`CONNECT ${target} → 400`, T, async (t) => {
    const h = await mainHost(t);
    const { res } = await connect(h.port('http'), target);
    assertFailure(res, 'HTTP/1.1 400 Bad Request', 'http_request_error');
    await assertServes(h.port('http'), echo);
  });
}

for (const [name, extra] of [
  ['Content-Length', 'Content-Length: 5\r\n'],
  ['Transfer-Encoding', 'Transfer-Encoding: chunked\r\n'],
] as const) {
  test(`CONNECT with ${name} → 400, and the bytes after it are not parsed`, T, async (t) => {
    const h = await mainHost(t);
    const { res } = await connect(h.port('http'), `127.0.0.1:${echo.port}`, { extra, after: 'hello' });
    assertFailure(res, 'HTTP/1.1 400 Bad Request', 'http_request_error');
    await assertServes(h.port('http'), echo);
  });
}

test('lowercase `connect` → 400', T, async (t) => {
  const h = await mainHost(t);
  const c = await Conn.open(h.port('http'));
  c.write(`connect 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assertFailure(await c.response(), 'HTTP/1.1 400 Bad Request', 'http_request_error');
  c.close();
  await assertServes(h.port('http'), echo);
});

for (const port of [25, 6379]) {
  test(`a port outside connect_ports (${port}) → 403 Tunnel Forbidden`, T, async (t) => {
    const h = await mainHost(t, { 'http.connect_ports': `1024-6378 6380-65535` });
    const { res } = await connect(h.port('http'), `127.0.0.1:${port}`);
    assertFailure(res, 'HTTP/1.1 403 Tunnel Forbidden', 'http_request_denied');
    assert.equal(h.host.ctx.stats.get('connect.port_forbidden'), 1, 'one counter per outcome');
    await assertServes(h.port('http'), echo);
    assert.equal(h.host.ctx.stats.get('connect.tunnels'), 1);
  });
}

test('a refused connection → 502 Connection Refused, at once', T, async (t) => {
  const h = await mainHost(t);
  const port = await freePort();
  const started = Date.now();
  const { res } = await connect(h.port('http'), `127.0.0.1:${port}`);
  assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
  assertFailure(res, 'HTTP/1.1 502 Connection Refused', 'connection_refused');
  await assertServes(h.port('http'), echo);
});

test('a name that does not resolve (.invalid, not in the hosts file) → 502 dns_error', T, async (t) => {
  const h = await mainHost(t);
  const { res } = await connect(h.port('http'), 'no-such-host.invalid:4443');
  assertFailure(res, 'HTTP/1.1 502 Cannot Resolve Host', 'dns_error');
  await assertServes(h.port('http'), echo);
});

test('a name from the hosts file is used (no DNS)', T, async (t) => {
  const h = await mainHost(t);
  const { c, res } = await connect(h.port('http'), `good.test:${echo.port}`);
  assert.equal(res.status, 200);
  c.write('hosts');
  assert.equal((await c.bytes(5)).toString(), 'hosts');
  c.close();
});

test('ip_allow `out` denies → 403 destination_ip_prohibited, and nothing is dialled', T, async (t) => {
  const h = await mainHost(t);
  const v4 = await counter('127.0.0.2');
  const v6 = await counter('::1');
  t.after(() => Promise.all([v4.close(), v6.close()]));
  for (const target of [`127.0.0.2:${v4.port}`, `denied.test:${v4.port}`, `[::1]:${v6.port}`]) {
    const { res } = await connect(h.port('http'), target);
    assertFailure(res, 'HTTP/1.1 403 Access Denied', 'destination_ip_prohibited');
  }
  assert.equal(v4.count() + v6.count(), 0, 'no connection reached a denied address');
  await assertServes(h.port('http'), echo);
});

test('with no ip_allow.yaml, a link-local destination (cloud metadata) → 403, no dial', T, async (t) => {
  const h = await startHost(t, { records: { 'http.connect_ports': '1024-65535' } });
  const { res } = await connect(h.port(), '169.254.169.254:8080');
  assertFailure(res, 'HTTP/1.1 403 Access Denied', 'destination_ip_prohibited');
  await assertServes(h.port(), echo);
});

test('half-close: the client ends its side and still gets the whole response', T, async (t) => {
  const h = await mainHost(t);
  const sink = await sinkServer();
  t.after(() => sink.close());
  const { c, res } = await connect(h.port('http'), `127.0.0.1:${sink.port}`);
  assert.equal(res.status, 200);
  const data = randomBytes(200_000);
  c.write(data);
  c.socket.end();
  assert.equal((await c.rest()).toString(), `received ${data.length}\n`);
});

test('the origin resets mid-stream → the client is closed promptly', T, async (t) => {
  const h = await mainHost(t);
  const rst = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  await new Promise<void>((r) => rst.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => rst.close(() => r())));
  const { c, res } = await connect(h.port('http'), `127.0.0.1:${(rst.address() as AddressInfo).port}`);
  assert.equal(res.status, 200);
  c.write('boom');
  await c.until(() => c.closed, 3000, 'the client to be closed');
  await assertServes(h.port('http'), echo);
});

test('an idle tunnel the client half-closed: at the idle timeout both connections are closed (tsproxy process)', T, async (t) => {
  // An origin that keeps its side open after our FIN, says nothing, and records what happens.
  const events: string[] = [];
  const sockets = new Set<net.Socket>();
  const origin = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.resume();
    s.on('end', () => events.push('end'));
    s.on('close', () => events.push('close'));
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    origin.close();
  });
  const dir = await makeConfigDir({
    records: {
      'http.server_ports': loopbackPorts('http'),
      'http.connect_ports': '*',
      'url_remap.remap_required': 0,
      'http.transaction_no_activity_timeout_in': 1,
    },
  });
  t.after(() => dir.cleanup());
  // A child process: if a socket leaks there, it cannot keep this test process busy.
  const p = await startTsproxy(dir.dir);
  t.after(async () => void (await p.stop('SIGTERM', 2000)));
  const { c, res } = await connect(p.port(), `127.0.0.1:${(origin.address() as AddressInfo).port}`);
  assert.equal(res.status, 200);
  c.write('x');
  c.socket.end();
  await waitUntil(() => events.includes('end'), 3000, 'the origin to see the FIN relayed');
  await c.until(() => c.closed, 5000, 'the client to be closed at the idle timeout');
  // Our FIN already went out, so closing can send the origin nothing more (Node cannot reset a
  // write-ended socket): it learns of the close when it writes: the first write draws a reset,
  // a later one fails.
  await waitUntil(
    () => {
      for (const s of sockets) if (!s.destroyed) s.write('y');
      return events.includes('close');
    },
    3000,
    'the origin connection to be closed too',
  );
});

// ---------------------------------------------------------------- CONNECT https://

interface TlsCase {
  readonly name: string;
  /** The CONNECT target host for the origin. */
  readonly host: string;
  readonly origin: () => Promise<TlsOrigin>;
  /** Whether ENFORCED accepts it. */
  readonly valid: boolean;
}

let pki: Pki;
let good: CertPair;
const tlsCases = (): TlsCase[] => [
  { name: 'a good certificate', host: 'good.test', origin: () => tlsOrigin({ cert: good.cert, key: good.key }), valid: true },
  { name: 'a certificate for another name', host: 'wrong.test', origin: () => tlsOrigin({ cert: good.cert, key: good.key }), valid: false },
  { name: 'an untrusted CA', host: '127.0.0.1', origin: () => tlsOrigin(pki.untrusted.server), valid: false },
];

async function tlsHost(t: TestContext, policy: string, clientCert?: CertPair): Promise<StartedHost> {
  return mainHost(t, {
    'ssl.client.verify.server.policy': policy,
    'ssl.client.CA.cert.filename': pki.ca,
    ...(clientCert ? { 'ssl.client.cert.filename': clientCert.cert, 'ssl.client.private_key.filename': clientCert.key } : {}),
  });
}

before(async () => {
  if (NO_OPENSSL) return;
  pki = await makePki();
  good = await pki.server('good.test');
});

for (const policy of ['ENFORCED', 'PERMISSIVE', 'DISABLED']) {
  test(`CONNECT https:// under verify.server.policy ${policy}`, { ...T, skip: NO_OPENSSL }, async (t) => {
    const h = await tlsHost(t, policy);
    for (const tc of tlsCases()) {
      const origin = await tc.origin();
      t.after(() => origin.close());
      const target = `https://${tc.host}:${origin.port}`;
      const { c, res } = await connect(h.port('http'), target);
      if (policy === 'ENFORCED' && !tc.valid) {
        assertFailure(res, 'HTTP/1.1 502 TLS Certificate Error', 'tls_certificate_error');
        assert.equal(origin.handshakes.length, 0, `${tc.name}: no handshake completed at the origin`);
      } else {
        assert.equal(res.status, 200, `${tc.name}: ${res.statusLine}`);
        c.write(`plain text over TLS (${tc.name})`);
        assert.equal((await c.bytes(Buffer.byteLength(`plain text over TLS (${tc.name})`))).toString(), `plain text over TLS (${tc.name})`);
        c.close();
      }
    }
    await assertServes(h.port('http'), echo);
  });
}

test('CONNECT https:// to an origin that requires a client certificate: with ssl.client.cert → 200; without → 502', { ...T, skip: NO_OPENSSL }, async (t) => {
  const client = await pki.client('tsproxy-client');
  const origin = await tlsOrigin({ cert: good.cert, key: good.key, ca: pki.ca, requestCert: true });
  t.after(() => origin.close());
  const target = `https://good.test:${origin.port}`;

  const withCert = await tlsHost(t, 'ENFORCED', client);
  const ok = await connect(withCert.port('http'), target);
  assert.equal(ok.res.status, 200);
  ok.c.write('mutual');
  assert.equal((await ok.c.bytes(6)).toString(), 'mutual');
  ok.c.close();
  assert.equal(origin.handshakes.at(-1)?.peerCn, 'tsproxy-client');

  const without = await tlsHost(t, 'ENFORCED');
  const { res } = await connect(without.port('http'), target);
  assert.equal(res.statusLine.slice(0, 13), 'HTTP/1.1 502 ', `no client certificate: ${res.statusLine}`);
  assert.match(res.headers['proxy-status'] ?? '', /^tsproxy; error=tls_(alert_received|certificate_error|protocol_error)/);
  await assertServes(without.port('http'), echo);
});
