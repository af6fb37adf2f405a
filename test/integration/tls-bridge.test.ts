/**
 * tls_bridge end to end: real tsproxy processes on loopback, mutual TLS between them (ats.md 1, 6, 7).
 *
 *   client ─CONNECT─▶ ingress (tls_bridge) ══TLS + client cert══▶ peer ─▶ service
 *
 * One ingress bridges to three peers: a good one, one whose certificate the ingress does not trust,
 * and one that trusts another CA for client certificates; a closed port stands for a peer that is
 * down. The services are an echo server, a half-close sink, a fast source, and an HTTP origin.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { basename, dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeConfigDir } from '../helpers/config-dir.js';
import type { ConfigDir } from '../helpers/config-dir.js';
import { curl } from '../helpers/curl.js';
import { makePki } from '../helpers/pki.js';
import type { CertPair } from '../helpers/pki.js';
import { startTsproxy } from '../helpers/proc.js';
import type { Proxy } from '../helpers/proc.js';
import { echoServer, httpOrigin, sinkServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { has } from '../helpers/tools.js';

const NO_OPENSSL = has('openssl') ? false : 'openssl not installed: the test PKI is made with it';
const NO_CURL = has('curl') ? false : 'curl not installed: this case drives the bridge with it';
/** A failure must be answered within this (the documented outcomes all come promptly). */
const PROMPT_MS = 5000;
const MiB = 1024 * 1024;

const IP_ALLOW = `ip_allow:
  - apply: in
    ip_addrs: [127.0.0.1, ::1]
    action: set_allow
  - apply: out
    ip_addrs: 127.0.0.1
    action: set_allow
    methods: [CONNECT]
`;

// ------------------------------------------------------------------ a raw CONNECT client

interface ConnectReply {
  statusLine: string;
  status: number;
  headers: Record<string, string>;
  /** For a non-2xx: the body (Content-Length bytes, or up to EOF). */
  body: Buffer;
  /** After a 2xx: the tunnel, paused, holding any bytes that followed the reply header. */
  socket: net.Socket;
  /** Milliseconds from connect to the complete reply. */
  ms: number;
}

function parseHead(head: string): Pick<ConnectReply, 'statusLine' | 'status' | 'headers'> {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { statusLine, status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers };
}

/** `CONNECT authority` through the proxy on `port`; resolves with the reply (rejects after `ms`). */
function connectThrough(port: number, authority: string, ms = PROMPT_MS * 2): Promise<ConnectReply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let reply: Pick<ConnectReply, 'statusLine' | 'status' | 'headers'> | null = null;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`CONNECT ${authority}: no complete reply within ${ms} ms; got ${JSON.stringify(buf.toString('latin1'))}`));
    }, ms);
    const done = (body: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      if (reply === null) return;
      resolve({ ...reply, body, socket, ms: Date.now() - started });
    };
    const bodyDone = (): boolean => {
      if (reply === null) return false;
      const cl = reply.headers['content-length'];
      return cl !== undefined && buf.length >= Number(cl);
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (reply === null) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        reply = parseHead(buf.subarray(0, end).toString('latin1'));
        buf = buf.subarray(end + 4);
        if (reply.status >= 200 && reply.status <= 299) {
          socket.pause();
          if (buf.length > 0) socket.unshift(buf);
          done(Buffer.alloc(0));
          return;
        }
      }
      if (bodyDone()) done(buf);
    };
    const onEnd = (): void => {
      if (reply !== null) done(buf);
      else {
        clearTimeout(timer);
        reject(new Error(`CONNECT ${authority}: connection closed before a reply; got ${JSON.stringify(buf.toString('latin1'))}`));
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: tls-bridge-test\r\n\r\n`);
  });
}

/** Resolves once the proxy has closed its side of `socket` (EOF or reset), then closes ours; rejects after `ms`. */
async function closed(socket: net.Socket, ms = PROMPT_MS): Promise<void> {
  if (!socket.readableEnded && !socket.destroyed) {
    socket.resume();
    const timer = setTimeout(() => socket.destroy(new Error(`the proxy left the connection open for ${ms} ms`)), ms);
    try {
      await Promise.race([once(socket, 'end'), once(socket, 'close')]);
    } finally {
      clearTimeout(timer);
    }
  }
  socket.destroy();
}

/** Write `payload` into a tunnel to the echo service and check it comes back; then close. */
async function echoThrough(reply: ConnectReply, payload: Buffer): Promise<void> {
  const { socket } = reply;
  const got: Buffer[] = [];
  let n = 0;
  const back = new Promise<void>((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      got.push(c);
      n += c.length;
      if (n >= payload.length) resolve();
    });
    socket.once('end', () => (n >= payload.length ? resolve() : reject(new Error(`echo ended after ${n} bytes`))));
    socket.once('error', reject);
  });
  socket.resume();
  socket.write(payload);
  await back;
  assert.ok(Buffer.concat(got).equals(payload), 'echoed bytes differ');
  socket.end();
  await closed(socket);
}

// ------------------------------------------------------------------ services

/** Writes `total` bytes to each connection as fast as back-pressure allows; counts bytes the kernel took. */
async function sourceServer(total: number): Promise<TestServer & { flushed(): number }> {
  let flushed = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!s.write(chunk, () => (flushed += chunk.length))) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    flushed: () => flushed,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Resident set size of a process in bytes (Linux), or null. */
function rss(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ the set-up

interface PeerSpec {
  cert: CertPair;
  /** CA for the ingress's client certificate. */
  clientCa: string;
  connectPorts: readonly number[];
  hosts: string;
}

describe('tls_bridge: ingress and peers over mutual TLS', { skip: NO_OPENSSL, timeout: 180_000 }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  let ingress: Proxy;
  let ing = 0;
  let peerPort = 0;
  let echo: TestServer;
  let sink: TestServer;
  let origin: TestServer;
  let source: TestServer & { flushed(): number };
  let peerProc: Proxy;
  let dead = 0;
  let forbiddenAtPeer = 0;
  let forbiddenAtIngress = 0;
  const SOURCE_TOTAL = 256 * MiB;

  async function startDir(dir: ConfigDir, tags?: string): Promise<Proxy> {
    cleanups.push(() => dir.cleanup());
    const p = await startTsproxy(dir.dir, tags === undefined ? {} : { tags });
    cleanups.push(async () => {
      await p.stop();
    });
    return p;
  }

  async function startPeer(spec: PeerSpec): Promise<Proxy> {
    const dir = await makeConfigDir({
      records: {
        'http.server_ports': '0:ssl:ip-in=127.0.0.1',
        'http.connect_ports': spec.connectPorts.join(' '),
        'http.cache.http': 0,
        'http.connect_attempts_timeout': 3,
        'url_remap.remap_required': 0,
        'ssl.server.cert.path': dirname(spec.cert.cert),
        'ssl.server.private_key.path': dirname(spec.cert.key),
        'ssl.CA.cert.path': dirname(spec.clientCa),
        'ssl.CA.cert.filename': basename(spec.clientCa),
        'ssl.client.certification_level': 2,
        'ssl.handshake_timeout_in': 3,
      },
      sslMulticert: `dest_ip=* ssl_cert_name=${basename(spec.cert.cert)} ssl_key_name=${basename(spec.cert.key)}\n`,
      pluginConfig: '',
      ipAllow: IP_ALLOW,
      hosts: spec.hosts,
    });
    return startDir(dir);
  }

  before(async () => {
    const pki = await makePki();
    const [peerCert, ingressCert] = await Promise.all([pki.server('peer.ats'), pki.client('ingress.ats')]);
    echo = await echoServer();
    sink = await sinkServer();
    origin = await httpOrigin();
    source = await sourceServer(SOURCE_TOTAL);
    cleanups.push(() => echo.close(), () => sink.close(), () => origin.close(), () => source.close());
    [dead, forbiddenAtPeer, forbiddenAtIngress] = [await closedPort(), await closedPort(), await closedPort()];
    const services = [echo.port, sink.port, origin.port, source.port];
    const hosts = '127.0.0.1 www.service.com x.order.test\n';

    peerProc = await startPeer({ cert: peerCert, clientCa: pki.ca, connectPorts: [...services, dead], hosts });
    peerPort = peerProc.port('ssl');
    // Its certificate is signed by a CA the ingress does not trust.
    const untrusted = await startPeer({ cert: pki.untrusted.server, clientCa: pki.ca, connectPorts: services, hosts });
    // It trusts another CA for client certificates, so it rejects the ingress's.
    const strict = await startPeer({ cert: peerCert, clientCa: pki.untrusted.ca, connectPorts: services, hosts });

    const peer = (p: number): string => `peer.ats:${p}`;
    const dir = await makeConfigDir({
      records: {
        'http.server_ports': '0:ip-in=127.0.0.1',
        'http.connect_ports': [peerPort, untrusted.port('ssl'), strict.port('ssl'), ...services, dead, forbiddenAtPeer].join(' '),
        'http.cache.http': 0,
        'http.connect_attempts_timeout': 3,
        'url_remap.remap_required': 0,
        'ssl.handshake_timeout_in': 3,
        'ssl.client.verify.server.policy': 'ENFORCED',
        'ssl.client.CA.cert.path': dirname(pki.ca),
        'ssl.client.CA.cert.filename': basename(pki.ca),
        'ssl.client.cert.path': dirname(ingressCert.cert),
        'ssl.client.cert.filename': basename(ingressCert.cert),
        'ssl.client.private_key.path': dirname(ingressCert.key),
        'ssl.client.private_key.filename': basename(ingressCert.key),
      },
      pluginConfig: [
        `tls_bridge.so .*[.]service[.]com ${peer(peerPort)} --file bridge.config .*[.]order[.]test ${peer(dead)}`,
        `  .*[.]untrusted[.]test ${peer(untrusted.port('ssl'))} .*[.]strict[.]test ${peer(strict.port('ssl'))}`,
        `  .*[.]down[.]test ${peer(dead)} .*[.]invalid ${peer(peerPort)}`,
      ].join(' ') + '\n',
      files: {
        'bridge.config': [
          '# Rules from --file sit where --file is written.',
          `www[.]service[.]com ${peer(dead)}   # loses: the argument rule before --file comes first`,
          `   x[.]order[.]test ${peer(peerPort)}   # wins over the argument rule after --file`,
          '',
        ].join('\n'),
      },
      ipAllow: IP_ALLOW,
      hosts: '127.0.0.1 peer.ats\n',
    });
    ingress = await startDir(dir, 'tls_bridge');
    ing = ingress.port('http');
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  /** A bridged echo works: the ingress is still serving. */
  async function stillServing(): Promise<void> {
    const r = await connectThrough(ing, `www.service.com:${echo.port}`);
    assert.equal(r.status, 200, r.statusLine);
    await echoThrough(r, randomBytes(1024));
  }

  test('curl reaches the service through the bridge; ATS debug lines; stripped fields', { skip: NO_CURL, timeout: 30_000 }, async () => {
    const from = ingress.stderrLines().length;
    const r = await curl(['-p', '-x', `http://127.0.0.1:${ing}`, `http://www.service.com:${origin.port}/hello`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'GET /hello\n');
    const connectReply = r.headerBlocks[0] ?? '';
    assert.match(connectReply, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(connectReply, /^(transfer-encoding|age|proxy-connection):/im);
    await ingress.waitForLine(new RegExp(`\\(tls_bridge\\) Intercepting transaction \\d+ to 'www\\.service\\.com' via 'peer\\.ats:${peerPort}'`), 5000, from);
    await ingress.waitForLine(/\(tls_bridge\) Received UA VConn, connecting to peer peer\.ats:\d+$/, 5000, from);
    await ingress.waitForLine(/\(tls_bridge\) Outbound status 200$/, 5000, from);
    await ingress.waitForLine(/\(tls_bridge\) Outbound ready$/, 5000, from);
    await ingress.waitForLine(/\(tls_bridge\) TXN_CLOSE: cleanup$/, 5000, from);
  });

  test('64 MiB each way, byte-exact', { timeout: 120_000 }, async () => {
    const r = await connectThrough(ing, `www.service.com:${echo.port}`);
    assert.equal(r.status, 200, r.statusLine);
    const { socket } = r;
    const want = createHash('sha256');
    const got = createHash('sha256');
    let received = 0;
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (c: Buffer) => {
        got.update(c);
        received += c.length;
        if (received === 64 * MiB) resolve();
      });
      socket.once('end', () => reject(new Error(`ended after ${received} bytes`)));
      socket.once('error', reject);
    });
    socket.resume();
    for (let i = 0; i < 64; i++) {
      const block = randomBytes(MiB);
      want.update(block);
      if (!socket.write(block)) await once(socket, 'drain');
    }
    await done;
    assert.equal(received, 64 * MiB);
    assert.equal(got.digest('hex'), want.digest('hex'));
    socket.end();
    await closed(socket);
  });

  test('a host that matches no rule is not bridged', { timeout: 20_000 }, async () => {
    const from = ingress.stderrLines().length;
    const r = await connectThrough(ing, `localhost:${echo.port}`);
    assert.equal(r.status, 200, r.statusLine);
    await echoThrough(r, Buffer.from('direct'));
    assert.deepEqual(ingress.stderrLines().slice(from).filter((l) => l.includes("to 'localhost'")), []);
  });

  test('x.service.com.evil does not match .*[.]service[.]com (anchored at both ends)', { timeout: 20_000 }, async () => {
    const from = ingress.stderrLines().length;
    const r = await connectThrough(ing, `x.service.com.evil:${echo.port}`);
    r.socket.destroy();
    assert.deepEqual(ingress.stderrLines().slice(from).filter((l) => l.includes('Intercepting')), []);
  });

  test('--file rules sit where --file is written; first match wins', { timeout: 20_000 }, async () => {
    const a = await connectThrough(ing, `www.service.com:${echo.port}`);
    assert.equal(a.status, 200, 'the argument rule before --file wins over the file');
    await echoThrough(a, Buffer.from('a'));
    const b = await connectThrough(ing, `x.order.test:${echo.port}`);
    assert.equal(b.status, 200, "the file's rule wins over the argument rule after --file");
    await echoThrough(b, Buffer.from('b'));
    const c = await connectThrough(ing, `y.order.test:${echo.port}`);
    assert.equal(c.statusLine, 'HTTP/1.1 502 Connection Refused', 'the argument rule after --file: a dead peer');
    await closed(c.socket);
  });

  const failures: { name: string; authority: () => string; statusLine: RegExp; proxyStatus: RegExp; todo?: string }[] = [
    {
      name: 'peer down',
      authority: () => `a.down.test:${echo.port}`,
      statusLine: /^HTTP\/1\.1 502 Connection Refused$/,
      proxyStatus: /error=connection_refused/,
    },
    {
      name: 'peer certificate untrusted',
      authority: () => `a.untrusted.test:${echo.port}`,
      statusLine: /^HTTP\/1\.1 502 TLS Certificate Error$/,
      proxyStatus: /error=tls_certificate_error/,
    },
    {
      name: "peer rejects the ingress's client certificate",
      authority: () => `a.strict.test:${echo.port}`,
      statusLine: /^HTTP\/1\.1 502 TLS (Alert Received|Protocol Error)$/,
      proxyStatus: /error=tls_(alert_received|protocol_error)/,
    },
    {
      name: 'service down behind the peer',
      authority: () => `www.service.com:${dead}`,
      statusLine: /^HTTP\/1\.1 502 Connection Refused$/,
      proxyStatus: /error=connection_refused/,
    },
    {
      name: 'name unresolvable at the peer',
      authority: () => `nothere.invalid:${echo.port}`,
      statusLine: /^HTTP\/1\.1 50[24] /,
      proxyStatus: /error=dns_(error|timeout)/,
    },
    {
      name: 'port refused by the ingress',
      authority: () => `www.service.com:${forbiddenAtIngress}`,
      statusLine: /^HTTP\/1\.1 403 Tunnel Forbidden$/,
      proxyStatus: /error=http_request_denied/,
    },
    {
      name: 'port refused by the peer',
      authority: () => `www.service.com:${forbiddenAtPeer}`,
      statusLine: /^HTTP\/1\.1 403 Tunnel Forbidden$/,
      proxyStatus: /error=http_request_denied/,
    },
  ];
  for (const f of failures) {
    const opts = f.todo === undefined ? { timeout: 30_000 } : { timeout: 30_000, todo: f.todo };
    test(`${f.name}: documented status promptly, then closed; the ingress keeps serving`, opts, async () => {
      const r = await connectThrough(ing, f.authority());
      assert.match(r.statusLine, f.statusLine, JSON.stringify(r.headers));
      assert.ok(r.ms < PROMPT_MS, `answered after ${r.ms} ms`);
      assert.match(r.headers['proxy-status'] ?? '', f.proxyStatus);
      assert.equal(r.body.length, Number(r.headers['content-length']), 'body length matches Content-Length');
      assert.equal(r.headers['transfer-encoding'], undefined);
      await closed(r.socket);
      await stillServing();
    });
  }

  test('client half-close: the whole reply still arrives', { timeout: 20_000 }, async () => {
    const r = await connectThrough(ing, `www.service.com:${sink.port}`);
    assert.equal(r.status, 200, r.statusLine);
    const { socket } = r;
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.resume();
    socket.end(randomBytes(100_000));
    await once(socket, 'end');
    assert.equal(Buffer.concat(chunks).toString(), 'received 100000\n');
    await closed(socket);
  });

  test('a slow reader: the proxies buffer a bounded amount, then everything arrives', { timeout: 120_000 }, async () => {
    const before = { ingress: rss(ingress.pid), peer: rss(peerProc.pid) };
    const r = await connectThrough(ing, `www.service.com:${source.port}`);
    assert.equal(r.status, 200, r.statusLine);
    const { socket } = r; // paused: nothing is read yet
    // Poll until the source stops getting bytes out (every buffer on the path is full).
    const deadline = Date.now() + 30_000;
    let last = -1;
    let stable = 0;
    while (stable < 5) {
      assert.ok(Date.now() < deadline, `the source never stalled (flushed ${source.flushed()} bytes)`);
      await new Promise((res) => setTimeout(res, 100));
      const now = source.flushed();
      stable = now === last ? stable + 1 : 0;
      last = now;
    }
    assert.ok(last < 96 * MiB, `${last} bytes left the source while the client read nothing`);
    const during = { ingress: rss(ingress.pid), peer: rss(peerProc.pid) };
    for (const k of ['ingress', 'peer'] as const) {
      const b = before[k];
      const d = during[k];
      if (b !== null && d !== null) assert.ok(d - b < 64 * MiB, `${k} RSS grew by ${((d - b) / MiB).toFixed(1)} MiB`);
    }
    let received = 0;
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.resume();
    await once(socket, 'end');
    assert.equal(received, SOURCE_TOTAL);
    socket.end();
    await closed(socket);
  });

  test('200 concurrent bridged tunnels', { timeout: 120_000 }, async () => {
    const one = async (i: number): Promise<void> => {
      const r = await connectThrough(ing, `www.service.com:${echo.port}`, 60_000);
      assert.equal(r.status, 200, `tunnel ${i}: ${r.statusLine}`);
      await echoThrough(r, Buffer.concat([Buffer.from(`tunnel ${i} `), randomBytes(4096)]));
    };
    await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
    await stillServing();
  });
});
