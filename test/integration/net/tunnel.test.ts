import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import type { Tunnel, TunnelOptions, TunnelStats } from '../../../host/api/types.js';
import { createTunnel } from '../../../host/net/tunnel.js';
import { createVConnPair, type VConnEnd } from '../../../host/net/vconn-pair.js';
import { hasOpenssl, makePki, type Pki } from './certs.js';

const MiB = 1024 * 1024;

interface Proxied {
  readonly client: net.Socket;
  readonly up: net.Socket;
  readonly tunnel: Tunnel;
  readonly stats: Promise<TunnelStats>;
}

/** A listener that tunnels each accepted socket to `originPort` (the shape of a CONNECT tunnel). */
async function startProxy(originPort: number, opts: TunnelOptions = {}): Promise<{ port: number; next: () => Promise<Proxied>; close: () => void }> {
  const queue: Proxied[] = [];
  const waiters: ((p: Proxied) => void)[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const up = net.connect({ host: '127.0.0.1', port: originPort, allowHalfOpen: true });
    let onClose: (s: TunnelStats) => void = () => {};
    const stats = new Promise<TunnelStats>((r) => (onClose = r));
    let calls = 0;
    const t = createTunnel(client, up, {
      ...opts,
      onClose: (s) => {
        calls++;
        assert.equal(calls, 1, 'onClose once');
        onClose(s);
      },
    });
    void t.closed.then(async (s) => assert.deepEqual(await stats, s));
    const p = { client, up, tunnel: t, stats };
    const w = waiters.shift();
    if (w) w(p);
    else queue.push(p);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => {
      const p = queue.shift();
      return p ? Promise.resolve(p) : new Promise((r) => waiters.push(r));
    },
    close: () => server.close(),
  };
}

async function listen(handler: (s: net.Socket) => void): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    handler(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, server };
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Read a stream to its end: hash and length. */
function drain(s: Duplex): Promise<{ hash: string; length: number }> {
  const h = createHash('sha256');
  let length = 0;
  s.on('data', (c: Buffer) => {
    h.update(c);
    length += c.length;
  });
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve({ hash: h.digest('hex'), length }));
    s.once('error', reject);
  });
}

async function connect(port: number): Promise<net.Socket> {
  const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(c, 'connect');
  return c;
}

/** Resolves on 'close', whatever errors came before it. */
function closeOf(s: Duplex): Promise<void> {
  return new Promise((resolve) => s.once('close', () => resolve()));
}

/** Resolves once the peer has gone: an EOF, or a close (a reset). */
function endOrClose(s: Duplex): Promise<void> {
  return new Promise((resolve) => {
    s.once('end', () => resolve());
    s.once('close', () => resolve());
  });
}

/** Poll `cond` every 10 ms until true or the deadline. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('byte-exact both ways at once, several MiB, then a clean close', { timeout: 30_000 }, async (t) => {
  const up = randomBytes(8 * MiB);
  const down = randomBytes(6 * MiB);
  let originGot: Promise<{ hash: string; length: number }> = Promise.reject(new Error('no origin connection'));
  originGot.catch(() => {});
  const origin = await listen((s) => {
    originGot = drain(s);
    s.end(down);
  });
  t.after(() => origin.server.close());
  const proxy = await startProxy(origin.port);
  t.after(() => proxy.close());
  const c = await connect(proxy.port);
  const got = drain(c);
  c.end(up);
  const p = await proxy.next();
  assert.deepEqual(await got, { hash: sha(down), length: down.length });
  assert.deepEqual(await originGot, { hash: sha(up), length: up.length });
  const stats = await p.stats;
  assert.deepEqual(stats, { aToB: up.length, bToA: down.length, reason: 'done' });
  c.destroy();
});

test('half-close: the client ends its side and still receives the whole response', { timeout: 30_000 }, async (t) => {
  const response = randomBytes(4 * MiB);
  const origin = await listen((s) => {
    let req = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (req += d));
    s.on('end', () => s.end(req === 'request, then FIN' ? response : Buffer.from('bad request')));
  });
  t.after(() => origin.server.close());
  const proxy = await startProxy(origin.port);
  t.after(() => proxy.close());
  const c = await connect(proxy.port);
  const got = drain(c);
  c.end('request, then FIN');
  assert.deepEqual(await got, { hash: sha(response), length: response.length });
  const stats = await (await proxy.next()).stats;
  assert.equal(stats.reason, 'done');
  assert.equal(stats.bToA, response.length);
  c.destroy();
});

test('back-pressure: a client that stops reading keeps the tunnel buffers bounded', { timeout: 60_000 }, async (t) => {
  const TOTAL = 64 * MiB;
  const CHUNK = 64 * 1024;
  const block = randomBytes(CHUNK);
  let originWritten = 0;
  const origin = await listen((s) => {
    const pump = (): void => {
      while (originWritten < TOTAL) {
        originWritten += CHUNK;
        if (!s.write(block)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  t.after(() => origin.server.close());
  const proxy = await startProxy(origin.port);
  t.after(() => proxy.close());
  const c = await connect(proxy.port);
  c.pause();
  const p = await proxy.next();
  // Wait until the origin is blocked: nothing more is written for 200 ms.
  let last = -1;
  let stableSince = Date.now();
  await until(
    () => {
      if (originWritten !== last) {
        last = originWritten;
        stableSince = Date.now();
      }
      return Date.now() - stableSince > 200;
    },
    20_000,
    'the origin to block',
  );
  const buffered = p.client.writableLength + p.up.readableLength + p.up.writableLength + p.client.readableLength;
  assert.ok(originWritten < TOTAL, 'the origin must be held back');
  assert.ok(buffered <= 256 * 1024, `tunnel buffers ${buffered} bytes`);
  let maxBuffered = 0;
  const h = createHash('sha256');
  let received = 0;
  c.on('data', (d: Buffer) => {
    h.update(d);
    received += d.length;
    maxBuffered = Math.max(maxBuffered, p.client.writableLength + p.up.readableLength);
  });
  const ended = once(c, 'end');
  c.end();
  c.resume();
  await ended;
  assert.equal(received, TOTAL);
  assert.ok(maxBuffered <= 256 * 1024, `max tunnel buffers ${maxBuffered} bytes`);
  assert.equal((await p.stats).reason, 'done');
  c.destroy();
});

test('idle timeout closes an idle tunnel; an active one survives past it', { timeout: 10_000 }, async (t) => {
  const origin = await listen((s) => s.pipe(s));
  t.after(() => origin.server.close());
  const proxy = await startProxy(origin.port, { idleTimeoutMs: 200 });
  t.after(() => proxy.close());

  // Active: a byte every 40 ms for 600 ms.
  const active = await connect(proxy.port);
  active.resume();
  const pa = await proxy.next();
  let alive = true;
  void pa.stats.then(() => (alive = false));
  for (let i = 0; i < 15; i++) {
    active.write('.');
    await new Promise((r) => setTimeout(r, 40));
  }
  assert.ok(alive, 'an active tunnel must survive past the idle timeout');

  // Then silence: closed between 200 ms and 200·1.25 ms plus scheduling slack.
  const start = Date.now();
  active.on('error', () => {});
  const closed = closeOf(active);
  const stats = await pa.stats;
  const took = Date.now() - start;
  assert.equal(stats.reason, 'timeout');
  assert.equal(stats.aToB, 15);
  assert.ok(took >= 100 && took < 600, `closed after ${took} ms`);
  await closed;
});

test('a reset on the upstream side closes the client promptly', { timeout: 10_000 }, async (t) => {
  const origin = await listen((s) => {
    s.write('some bytes');
    s.once('data', () => s.resetAndDestroy());
  });
  t.after(() => origin.server.close());
  const proxy = await startProxy(origin.port);
  t.after(() => proxy.close());
  const c = await connect(proxy.port);
  c.on('error', () => {});
  const closed = closeOf(c);
  await once(c, 'data');
  c.write('go');
  const stats = await (await proxy.next()).stats;
  assert.equal(stats.reason, 'error');
  assert.equal((stats.error as NodeJS.ErrnoException).code, 'ECONNRESET');
  await closed;
});

test('a client reset closes the upstream; destroy() closes both, once', { timeout: 10_000 }, async (t) => {
  const upClosed: Promise<unknown>[] = [];
  const origin = await listen((s) => {
    upClosed.push(closeOf(s));
    s.resume();
  });
  t.after(() => origin.server.close());
  const proxy = await startProxy(origin.port);
  t.after(() => proxy.close());

  const c1 = await connect(proxy.port);
  const p1 = await proxy.next();
  await until(() => upClosed.length === 1, 5000, 'the origin connection');
  c1.resetAndDestroy();
  const s1 = await p1.stats;
  assert.equal(s1.reason, 'error');
  assert.equal((s1.error as NodeJS.ErrnoException).code, 'ECONNRESET');
  await upClosed[0];

  for (const err of [undefined, new Error('shutting down')]) {
    const c = await connect(proxy.port);
    c.on('error', () => {});
    const cClosed = closeOf(c);
    const p = await proxy.next();
    await until(() => upClosed.length === (err ? 3 : 2), 5000, 'the origin connection');
    p.tunnel.destroy(err);
    p.tunnel.destroy();
    const s = await p.stats;
    assert.equal(s.reason, err ? 'error' : 'destroyed');
    assert.equal(s.error, err);
    assert.ok(p.client.destroyed && p.up.destroyed);
    await Promise.all([upClosed[err ? 2 : 1], cClosed]);
  }
});

test('heads are written first and counted; a virtual connection works as a side', { timeout: 10_000 }, async () => {
  const [host, plugin] = createVConnPair();
  const [ua, hostUa] = createVConnPair();
  // The "plugin" echoes in upper case.
  plugin.setEncoding('latin1');
  plugin.on('data', (d: string) => plugin.write(d.toUpperCase()));
  plugin.on('end', () => plugin.end());
  let stats: TunnelStats | null = null;
  const tun = createTunnel(hostUa, host, {
    headToB: Buffer.from('hello from the head, '),
    headToA: Buffer.from('HTTP/1.1 200 OK\r\n\r\n'),
    onClose: (s) => (stats = s),
  });
  const got = drain(ua);
  ua.end('and the body');
  const all = await got;
  const expected = Buffer.from('HTTP/1.1 200 OK\r\n\r\nHELLO FROM THE HEAD, AND THE BODY');
  assert.deepEqual(all, { hash: sha(expected), length: expected.length });
  const s = await tun.closed;
  assert.deepEqual(s, { aToB: 33, bToA: 19 + 33, reason: 'done' });
  assert.deepEqual(stats, s);
  tun.destroy();
  assert.equal(await tun.closed, s);
});

test('a side already ended or destroyed before the tunnel is made', { timeout: 10_000 }, async () => {
  const [a, a2] = createVConnPair();
  const [b, b2] = createVConnPair();
  a2.end();
  a.resume();
  await once(a, 'end');
  a.pause();
  const got = drain(b2);
  const tun = createTunnel(a, b);
  assert.deepEqual(await got, { hash: sha(Buffer.alloc(0)), length: 0 });
  const fromB = drain(a2);
  b2.end('late reply');
  assert.equal((await fromB).length, 10);
  assert.equal((await tun.closed).reason, 'done');

  const [c] = createVConnPair();
  const [d, d2] = createVConnPair();
  d2.on('error', () => {});
  c.destroy();
  assert.equal((await createTunnel(c, d).closed).reason, 'destroyed');
  assert.ok(d.destroyed);
});

let pki: Pki | null = null;
before(() => {
  if (hasOpenssl()) pki = makePki();
});
after(() => pki?.remove());

test('TLS on the client side: byte-exact and half-close through a TLSSocket', { timeout: 30_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const response = randomBytes(3 * MiB);
  const origin = await listen((s) => {
    const got = drain(s);
    void got.then((g) => s.end(g.length === 2 * MiB ? response : Buffer.from('short')));
  });
  t.after(() => origin.server.close());
  let stats: Promise<TunnelStats> = Promise.reject(new Error('no tunnel'));
  stats.catch(() => {});
  const server = tls.createServer({ cert: k.server.certPem, key: k.server.keyPem, allowHalfOpen: true }, (s) => {
    const up = net.connect({ host: '127.0.0.1', port: origin.port, allowHalfOpen: true });
    stats = createTunnel(s, up).closed;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername: 'peer.test', ca: k.caPem });
  await once(c, 'secureConnect');
  const got = drain(c);
  c.end(randomBytes(2 * MiB));
  assert.deepEqual(await got, { hash: sha(response), length: response.length });
  const s = await stats;
  assert.equal(s.reason, 'done');
  assert.deepEqual([s.aToB, s.bToA], [2 * MiB, response.length]);
  c.destroy();
});

/**
 * The shape of an intercepted CONNECT whose plugin tunnels its VConn on (tls_bridge): the plugin's
 * tunnel (its VConn ⇄ origin) runs first, then the host's tunnel (client ⇄ the intercept's host
 * end) joins it through the pair.
 */
async function intercepted(t: { after: (fn: () => void) => void }, greeting: Buffer): Promise<{
  client: net.Socket;
  plugin: Tunnel;
  host: Tunnel;
  pluginEnd: VConnEnd;
  hostEnd: VConnEnd;
}> {
  const origin = await listen((s) => {
    s.write(greeting);
    s.pipe(s);
  });
  t.after(() => origin.server.close());
  const [hostEnd, pluginEnd] = createVConnPair();
  const up = await connect(origin.port);
  const plugin = createTunnel(pluginEnd, up);
  // The greeting waits in the host end, unread, as a reply the host has not parsed yet would.
  await until(() => hostEnd.readableLength >= greeting.length, 5000, 'the greeting inside the pair');
  let client: net.Socket | null = null;
  let host: Tunnel | null = null;
  const front = await listen((s) => {
    client = s;
    host = createTunnel(s, hostEnd, { joinVConns: true, headToA: Buffer.from('HEAD|') });
  });
  t.after(() => front.server.close());
  const c = await connect(front.port);
  await until(() => host !== null && client !== null, 5000, 'the host tunnel');
  return { client: c, plugin, host: host!, pluginEnd, hostEnd };
}

test('joining through a virtual connection: bytes inside the pair first, then one relay, byte-exact', { timeout: 20_000 }, async (t) => {
  const greeting = Buffer.from('220 hello\r\n');
  const { client, plugin, host, pluginEnd, hostEnd } = await intercepted(t, greeting);
  const big = randomBytes(2 * MiB);
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  client.write(big);
  const want = Buffer.concat([Buffer.from('HEAD|'), greeting, big]);
  await until(() => Buffer.concat(got).length >= want.length, 10_000, 'the echo');
  assert.ok(Buffer.concat(got).equals(want), 'head, then the bytes waiting in the pair, then the echo, in order');
  // The pair is out of the data path: only the greeting crossed it, before the join.
  assert.deepEqual([hostEnd.bytesWritten, pluginEnd.bytesWritten], [0, greeting.length]);
  client.end();
  const [h, p] = await Promise.all([host.closed, plugin.closed]);
  assert.equal(h.reason, 'done');
  assert.equal(p.reason, 'done');
  assert.deepEqual([h.aToB, h.bToA], [big.length, 5 + greeting.length + big.length], 'each tunnel counts in its own sense');
  assert.deepEqual([p.aToB, p.bToA], [big.length, greeting.length + big.length]);
  assert.ok(hostEnd.destroyed && pluginEnd.destroyed, 'the bypassed ends close with the relay');
});

test('a joined relay ends when a bypassed end is destroyed, and from either tunnel handle', { timeout: 20_000 }, async (t) => {
  const first = await intercepted(t, Buffer.from('hi'));
  first.client.on('error', () => undefined);
  first.client.resume();
  const firstClosed = endOrClose(first.client);
  first.pluginEnd.destroy();
  assert.equal((await first.host.closed).reason, 'destroyed');
  assert.equal((await first.plugin.closed).reason, 'destroyed');
  await firstClosed;

  const second = await intercepted(t, Buffer.from('hi'));
  second.client.on('error', () => undefined);
  second.client.resume();
  const secondClosed = endOrClose(second.client);
  second.plugin.destroy(new Error('plugin gave up'));
  const h = await second.host.closed;
  assert.equal(h.reason, 'error');
  assert.equal(h.error?.message, 'plugin gave up');
  await secondClosed;
});

test('without joinVConns (a plugin\'s api.tunnel) nothing is joined: the bytes cross the pair', { timeout: 20_000 }, async (t) => {
  const origin = await listen((s) => s.pipe(s));
  t.after(() => origin.server.close());
  const [hostEnd, pluginEnd] = createVConnPair();
  const plugin = createTunnel(pluginEnd, await connect(origin.port));
  const front = await listen((s) => void createTunnel(s, hostEnd));
  t.after(() => front.server.close());
  const client = await connect(front.port);
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  client.write('ping');
  await until(() => Buffer.concat(got).toString() === 'ping', 5000, 'the echo');
  assert.deepEqual([hostEnd.bytesWritten, pluginEnd.bytesWritten], [4, 4], 'both ways through the pair');
  client.end();
  assert.equal((await plugin.closed).reason, 'done');
});
