/**
 * tls_bridge edge cases on real parts: a real tsproxy ingress (plugin.config names tls_bridge.so),
 * real TLS to a scripted peer written here, raw client sockets (ats.md 1, 6, 7).
 *
 *   raw client ─CONNECT─▶ ingress (tls_bridge) ══TLS══▶ scripted peer (records every byte)
 *
 * The peer answers each connection with the next behaviour in its script: a 200 with tunnel bytes,
 * a 403 with a body, a close, garbage, an over-long header.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import tls from 'node:tls';
import { makeConfigDir } from '../helpers/config-dir.js';
import { loadPair, makePki } from '../helpers/pki.js';
import { startTsproxy } from '../helpers/proc.js';
import type { Proxy } from '../helpers/proc.js';
import { httpOrigin } from '../helpers/servers.js';
import { has } from '../helpers/tools.js';
import { Conn, exchange, getRequest } from '../host/harness.js';

const NO_OPENSSL = has('openssl') ? false : 'openssl not installed: the test PKI is made with it';
const T = { timeout: 30_000, skip: NO_OPENSSL };
/** A failure must be answered within this. */
const PROMPT_MS = 5000;
/** The port the clients CONNECT to behind the peer (the peer never dials it). */
const SERVICE_PORT = 4443;
const AUTHORITY = `www.service.com:${SERVICE_PORT}`;
const CLIENT_CONNECT = `CONNECT ${AUTHORITY} HTTP/1.1\r\nHost: ${AUTHORITY}\r\nUser-Agent: tls-bridge-edges\r\n\r\n`;
const INTERCEPTING = /\(tls_bridge\) Intercepting transaction/;

/** One accepted peer connection: every byte received, and what had arrived when its header was complete. */
interface PeerConn {
  readonly socket: tls.TLSSocket;
  received(): Buffer;
  /** Everything received up to and including the first `\r\n\r\n`, and any bytes in the same read after it. */
  readonly head: Promise<{ head: string; extra: Buffer }>;
  /** Resolves once at least `n` bytes have been received in all (rejects on close first). */
  atLeast(n: number): Promise<void>;
}

/** What the peer does with a connection once the request header has arrived. */
type Behaviour = (c: PeerConn, head: string) => void;

interface Peer {
  readonly port: number;
  /** The connections that carried a request, in the order their headers arrived. */
  readonly conns: PeerConn[];
  /** TCP connections accepted, with a request or without (pre-warmed spares). */
  accepted(): number;
}

function track(socket: tls.TLSSocket): PeerConn {
  let buf = Buffer.alloc(0);
  const waiters = new Set<() => void>();
  let closed = false;
  let resolveHead: (v: { head: string; extra: Buffer }) => void = () => undefined;
  let rejectHead: (e: Error) => void = () => undefined;
  const head = new Promise<{ head: string; extra: Buffer }>((res, rej) => {
    resolveHead = res;
    rejectHead = rej;
  });
  head.catch(() => undefined);
  let headSeen = false;
  socket.on('data', (b: Buffer) => {
    buf = Buffer.concat([buf, b]);
    if (!headSeen) {
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        headSeen = true;
        resolveHead({ head: buf.subarray(0, end + 4).toString('latin1'), extra: Buffer.from(buf.subarray(end + 4)) });
      }
    }
    for (const w of waiters) w();
  });
  socket.on('close', () => {
    closed = true;
    rejectHead(new Error(`peer connection closed before a request header; got ${JSON.stringify(buf.toString('latin1'))}`));
    for (const w of waiters) w();
  });
  socket.on('error', () => undefined);
  return {
    socket,
    received: () => buf,
    head,
    atLeast: (n) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (buf.length >= n) {
            waiters.delete(check);
            resolve();
          } else if (closed) {
            waiters.delete(check);
            reject(new Error(`peer connection closed after ${buf.length} of ${n} bytes`));
          }
        };
        waiters.add(check);
        check();
      }),
  };
}

/** A TLS server for `peer.test` (signed by the test CA) that runs `script[i]` on the connection of its i-th request. */
async function startPeer(t: TestContext, script: readonly Behaviour[], name = 'peer.test'): Promise<Peer> {
  const pki = await makePki();
  const server = tls.createServer({ ...loadPair(await pki.server(name)), allowHalfOpen: true });
  const conns: PeerConn[] = [];
  // Every TCP connection, handshaking or not, so the server can close (the ingress keeps spares).
  const sockets = new Set<Socket>();
  let accepted = 0;
  server.on('connection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const c = track(socket);
    // By request, not by connection: pre-warmed connections wait without one.
    c.head
      .then((h) => {
        const behave = script[conns.length] ?? ((x: PeerConn) => x.socket.destroy());
        conns.push(c);
        behave(c, h.head);
      })
      .catch(() => undefined);
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  );
  return { port: (server.address() as AddressInfo).port, conns, accepted: () => accepted };
}

/** A tsproxy process bridging `.*[.]service[.]com` to the peer (or `pluginLine` as given), debug tag tls_bridge. */
async function startIngress(
  t: TestContext,
  peerPort: number,
  opts: { pluginLine?: string; peerName?: string; prewarm?: 0 | 1; tags?: string } = {},
): Promise<Proxy> {
  const pki = await makePki();
  const peerName = opts.peerName ?? 'peer.test';
  const dir = await makeConfigDir({
    records: {
      'http.server_ports': '0:ip-in=127.0.0.1',
      'http.connect_ports': `${peerPort} ${SERVICE_PORT}`,
      'http.cache.http': 0,
      'http.connect_attempts_timeout': 3,
      'url_remap.remap_required': 0,
      'ssl.handshake_timeout_in': 3,
      'ssl.client.verify.server.policy': 'ENFORCED',
      'ssl.client.CA.cert.filename': pki.ca,
      ...(opts.prewarm !== undefined ? { 'tunnel.prewarm.enabled': opts.prewarm } : {}),
    },
    pluginConfig: `${opts.pluginLine ?? `tls_bridge.so .*[.]service[.]com ${peerName}:${peerPort}`}\n`,
    hosts: `127.0.0.1 ${peerName} www.service.com\n`,
  });
  t.after(() => dir.cleanup());
  const proxy = await startTsproxy(dir.dir, { tags: opts.tags ?? 'tls_bridge' });
  const clients = new Set<Conn>();
  clientsOf.set(proxy, clients);
  t.after(async () => {
    // Clients first, so the proxy has nothing left to drain when it is stopped.
    for (const c of clients) c.close();
    await proxy.stop();
  });
  return proxy;
}

/** The client connections opened to each ingress, closed before it is stopped. */
const clientsOf = new WeakMap<Proxy, Set<Conn>>();

/** The client's CONNECT (and `pipelined` bytes in the same write) through the ingress. */
async function connect(ingress: Proxy, pipelined = ''): Promise<Conn> {
  const c = await Conn.open(ingress.port('http'));
  clientsOf.get(ingress)?.add(c);
  c.write(CLIENT_CONNECT + pipelined);
  return c;
}

const reply200 = (tail = ''): Behaviour => (c) => c.socket.write(`HTTP/1.1 200 OK\r\n\r\n${tail}`);

/** The ingress still bridges: a new client gets the peer's 200 and tunnel bytes. */
async function stillServing(ingress: Proxy): Promise<void> {
  const c = await connect(ingress);
  const r = await c.response({ connect: true, ms: PROMPT_MS });
  assert.equal(r.status, 200, r.statusLine);
  assert.equal((await c.bytes('again'.length)).toString(), 'again');
  c.close();
}

/** The request the peer got: a CONNECT for the client's authority, with its Host, as one header. */
function assertClientConnect(head: string): void {
  assert.match(head, new RegExp(`^CONNECT ${AUTHORITY.replace(/\./g, '\\.')} HTTP/1\\.1\\r\\n`));
  assert.match(head, new RegExp(`\\r\\nHost: ${AUTHORITY.replace(/\./g, '\\.')}\\r\\n`, 'i'));
  assert.match(head, /\r\nUser-Agent: tls-bridge-edges\r\n/i);
  assert.ok(head.endsWith('\r\n\r\n'));
  assert.equal(head.indexOf('\r\n\r\n'), head.length - 4, 'one header block');
}

test('the peer gets the client CONNECT first and alone; pipelined bytes follow its 200, in order', T, async (t) => {
  let atReply = Buffer.alloc(0);
  const peer = await startPeer(t, [
    (c) => {
      atReply = Buffer.from(c.received());
      c.socket.write('HTTP/1.1 200 OK\r\n\r\n');
    },
  ]);
  const ingress = await startIngress(t, peer.port);
  const client = await connect(ingress, 'early-1|early-2|');
  const r = await client.response({ connect: true, ms: PROMPT_MS });
  assert.equal(r.status, 200, r.statusLine);
  const conn = peer.conns[0];
  assert.ok(conn);
  const { head, extra } = await conn.head;
  assertClientConnect(head);
  assert.equal(extra.length, 0, 'nothing after the CONNECT header before the 200');
  assert.equal(atReply.toString('latin1'), head, 'the peer had received exactly the CONNECT when it replied');
  client.write('late');
  const want = `${head}early-1|early-2|late`;
  await conn.atLeast(Buffer.byteLength(want, 'latin1'));
  assert.equal(conn.received().toString('latin1'), want);
  assert.equal(peer.conns.length, 1, 'one request to the peer');
});

test('bytes the peer writes with its 200 header reach the client first, intact', T, async (t) => {
  const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const peer = await startPeer(t, [
    (c) => {
      c.socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-Peer: 1\r\n\r\n'), payload]));
      c.socket.on('data', (b: Buffer) => {
        if (b.includes('ping')) c.socket.write('pong');
      });
    },
  ]);
  const ingress = await startIngress(t, peer.port);
  const client = await connect(ingress);
  const r = await client.response({ connect: true, ms: PROMPT_MS });
  assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
  assert.ok((await client.bytes(payload.length)).equals(payload));
  client.write('ping');
  assert.equal((await client.bytes(4)).toString(), 'pong');
});

test('a peer 403 passes to the client unchanged: status line and body', T, async (t) => {
  const peer = await startPeer(t, [
    (c) => c.socket.end('HTTP/1.1 403 Nope\r\nContent-Length: 4\r\nX-Peer-Says: no\r\n\r\nnope'),
  ]);
  const ingress = await startIngress(t, peer.port);
  const client = await connect(ingress);
  const r = await client.response({ ms: PROMPT_MS });
  assert.equal(r.statusLine, 'HTTP/1.1 403 Nope');
  assert.equal(r.headers['x-peer-says'], 'no');
  assert.equal(r.body.toString(), 'nope');
});

test('Transfer-Encoding, Age and Proxy-Connection from the peer never reach the client', T, async (t) => {
  const peer = await startPeer(t, [
    (c) => c.socket.write('HTTP/1.1 200 OK\r\nAge: 7\r\nProxy-Connection: keep-alive\r\nTransfer-Encoding: chunked\r\nX-Kept: yes\r\n\r\ntunnel'),
    (c) => c.socket.end('HTTP/1.1 403 Nope\r\nAge: 7\r\nProxy-Connection: close\r\nContent-Length: 4\r\n\r\nnope'),
  ]);
  const ingress = await startIngress(t, peer.port);
  const ok = await connect(ingress);
  const r = await ok.response({ connect: true, ms: PROMPT_MS });
  assert.equal(r.status, 200, r.statusLine);
  assert.equal(r.headers['x-kept'], 'yes');
  for (const f of ['transfer-encoding', 'age', 'proxy-connection']) assert.equal(r.headers[f], undefined, f);
  assert.equal((await ok.bytes(6)).toString(), 'tunnel');
  ok.close();

  const denied = await connect(ingress);
  const d = await denied.response({ ms: PROMPT_MS });
  assert.equal(d.statusLine, 'HTTP/1.1 403 Nope');
  for (const f of ['transfer-encoding', 'age', 'proxy-connection']) assert.equal(d.headers[f], undefined, f);
  assert.equal(d.body.toString(), 'nope');
});

/**
 * The peer's reply to the client's CONNECT comes back through the tunnel and is read by the host as
 * the origin response of the intercepted transaction, so a bad one is the host's 502 (the plugin's
 * own 519 / Too Large are for the internal CONNECT's reply, which here is the ingress's 200).
 */
const failures: { name: string; behave: Behaviour; statusLine: RegExp }[] = [
  { name: 'closes before replying', behave: (c) => c.socket.end(), statusLine: /^HTTP\/1\.1 502 Tunnel Connection Failed$/ },
  { name: 'replies garbage', behave: (c) => c.socket.write('HELLO\r\n\r\n'), statusLine: /^HTTP\/1\.1 502 / },
  {
    name: 'sends a header over 16 KiB',
    behave: (c) => c.socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`),
    statusLine: /^HTTP\/1\.1 50[02] /,
  },
];
for (const f of failures) {
  test(`a peer that ${f.name}: a prompt non-2xx with Proxy-Status; the ingress keeps serving`, T, async (t) => {
    const peer = await startPeer(t, [f.behave, reply200('again')]);
    const ingress = await startIngress(t, peer.port);
    const started = Date.now();
    const client = await connect(ingress);
    const r = await client.response({ ms: PROMPT_MS });
    assert.ok(Date.now() - started < PROMPT_MS, 'prompt');
    assert.match(r.statusLine, f.statusLine, ingress.output());
    assert.ok(r.status < 200 || r.status > 299);
    assert.match(r.headers['proxy-status'] ?? '', /^tsproxy(;|$)/, JSON.stringify(r.headers));
    assert.equal(r.headers['transfer-encoding'], undefined);
    client.close();
    await stillServing(ingress);
  });
}

test('a GET (even to a matching host) is not intercepted', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const peer = await startPeer(t, []);
  const ingress = await startIngress(t, peer.port);
  const from = ingress.stderrLines().length;
  const url = `http://www.service.com:${origin.port}/x`;
  const r = await exchange(ingress.port('http'), getRequest(url, `www.service.com:${origin.port}`), { ms: PROMPT_MS });
  assert.equal(r.status, 200, r.statusLine);
  assert.equal(r.body.toString(), 'GET /x\n');
  assert.deepEqual(ingress.stderrLines().slice(from).filter((l) => INTERCEPTING.test(l)), []);
  assert.equal(peer.conns.length, 0);
});

test('the internal CONNECT to the peer is not intercepted, even when its host matches the rule', T, async (t) => {
  // The peer is named peer.service.com, so the plugin's own CONNECT https://peer.service.com matches.
  const peer = await startPeer(t, [reply200('again')], 'peer.service.com');
  const ingress = await startIngress(t, peer.port, { peerName: 'peer.service.com' });
  const from = ingress.stderrLines().length;
  const client = await connect(ingress);
  const r = await client.response({ connect: true, ms: PROMPT_MS });
  assert.equal(r.status, 200, r.statusLine);
  assert.equal((await client.bytes(5)).toString(), 'again');
  await ingress.waitForLine(/\(tls_bridge\) Outbound ready$/, PROMPT_MS, from);
  const intercepted = ingress.stderrLines().slice(from).filter((l) => INTERCEPTING.test(l));
  assert.equal(intercepted.length, 1, intercepted.join('\n'));
  assert.match(intercepted[0] ?? '', new RegExp(`to 'www\\.service\\.com' via 'peer\\.service\\.com:${peer.port}'$`));
  assert.equal(peer.conns.length, 1);
});

test('tls_bridge.so with no destinations logs it and the process still serves', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const peer = await startPeer(t, []);
  const ingress = await startIngress(t, peer.port, { pluginLine: 'tls_bridge.so' });
  await ingress.waitForLine(/\(tls_bridge\) No destinations defined, plugin disabled$/, PROMPT_MS);
  await ingress.waitForLine(/NOTE: \[TLS Bridge\] No destinations defined, plugin disabled$/, PROMPT_MS);
  const url = `http://127.0.0.1:${origin.port}/y`;
  const r = await exchange(ingress.port('http'), getRequest(url, `127.0.0.1:${origin.port}`), { ms: PROMPT_MS });
  assert.equal(r.status, 200, r.statusLine);
  assert.equal(r.body.toString(), 'GET /y\n');
  const client = await connect(ingress);
  const c = await client.response({ ms: PROMPT_MS });
  assert.notEqual(c.status, 200, 'not bridged: the ingress tries www.service.com itself');
  assert.deepEqual(ingress.stderrLines().filter((l) => INTERCEPTING.test(l)), []);
  assert.equal(peer.conns.length, 0);
});

/** One bridged CONNECT whose peer writes `word` after its 200: the client reads it, then leaves. */
async function bridged(ingress: Proxy, word: string): Promise<void> {
  const c = await connect(ingress);
  const r = await c.response({ connect: true, ms: PROMPT_MS });
  assert.equal(r.status, 200, r.statusLine);
  assert.equal((await c.bytes(word.length)).toString(), word);
  c.close();
}

test('pre-warm: after the first bridged CONNECT, the next ones ride connections opened before they were asked for', T, async (t) => {
  const peer = await startPeer(t, [reply200('one'), reply200('two')]);
  const ingress = await startIngress(t, peer.port, { tags: 'tls_bridge|prewarm' });
  await bridged(ingress, 'one');
  // The first CONNECT dialled its own connection and asked for two spares.
  await ingress.waitForLine(/\(prewarm\) peer\.test:\d+: spare ready \(127\.0\.0\.1\), 2 spare$/, PROMPT_MS);
  assert.equal(peer.accepted(), 3);
  const from = ingress.stderrLines().length;
  await bridged(ingress, 'two');
  assert.ok(ingress.stderrLines().slice(from).some((l) => /\(prewarm\) peer\.test:\d+: hit, 1 spare$/.test(l)), ingress.output());
  // The hit is topped up by one more connection, and nothing else was dialled.
  await ingress.waitForLine(/\(prewarm\) peer\.test:\d+: spare ready \(127\.0\.0\.1\), 2 spare$/, PROMPT_MS, from);
  assert.equal(peer.accepted(), 4);
  assert.equal(peer.conns.length, 2);
});

test('pre-warm off (proxy.config.tunnel.prewarm.enabled 0): one peer connection per CONNECT, none ahead', T, async (t) => {
  const peer = await startPeer(t, [reply200('one'), reply200('two')]);
  const ingress = await startIngress(t, peer.port, { prewarm: 0, tags: 'tls_bridge|prewarm' });
  await bridged(ingress, 'one');
  await bridged(ingress, 'two');
  assert.equal(peer.accepted(), 2, 'every peer connection carried a request');
  assert.deepEqual(ingress.stderrLines().filter((l) => l.includes('(prewarm)')), []);
});
