import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { createVConnPair } from '../../../host/net/vconn-pair.js';

const CLIENT = { address: '192.0.2.7', port: 40000, family: 'IPv4' } as const;
const LOCAL = { address: '127.0.0.1', port: 8080, family: 'IPv4' } as const;

function collect(s: Duplex): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => parts.push(c));
  return once(s, 'end').then(() => Buffer.concat(parts));
}

test('addresses: each side defaults to the opposite side of the peer', { timeout: 5000 }, async () => {
  const [a, b] = createVConnPair({ b: { remote: CLIENT, local: LOCAL } });
  assert.equal(b.remoteAddress, '192.0.2.7');
  assert.equal(b.remotePort, 40000);
  assert.equal(b.remoteFamily, 'IPv4');
  assert.equal(b.localAddress, '127.0.0.1');
  assert.equal(b.localPort, 8080);
  assert.equal(a.localAddress, '192.0.2.7');
  assert.equal(a.remoteAddress, '127.0.0.1');
  assert.deepEqual(b.address(), LOCAL);
  const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
  a.end();
  b.end();
  a.resume();
  b.resume();
  await closed;
});

test('http.Server fed one end, http.request over the other', { timeout: 5000 }, async (t) => {
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      res.setHeader('x-client', `${req.socket.remoteAddress}:${req.socket.remotePort}`);
      res.end(`echo ${req.method} ${req.url} ${body}`);
    });
  });
  t.after(() => server.close());
  const [client, serverEnd] = createVConnPair({ b: { remote: CLIENT, local: LOCAL } });
  const serverClosed = once(serverEnd, 'close');
  server.emit('connection', serverEnd);
  const req = http.request({ method: 'POST', path: '/x?y=1', host: 'example.test', createConnection: () => client });
  req.end('hello');
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-client'], '192.0.2.7:40000');
  const body = await collect(res as unknown as Duplex);
  assert.equal(body.toString(), 'echo POST /x?y=1 hello');
  await serverClosed;
  assert.ok(client.destroyed);
});

test('CONNECT round trip: server connect event, client connect event, bytes both ways', { timeout: 5000 }, async (t) => {
  const server = http.createServer();
  server.on('connect', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => {
    assert.equal(req.url, 'origin.test:443');
    sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) sock.write(head);
    sock.pipe(sock);
  });
  t.after(() => server.close());
  const [client, serverEnd] = createVConnPair();
  const serverClosed = once(serverEnd, 'close');
  server.emit('connection', serverEnd);
  const req = http.request({ method: 'CONNECT', path: 'origin.test:443', createConnection: () => client });
  req.end();
  const [res, sock, head] = (await once(req, 'connect')) as [http.IncomingMessage, Duplex, Buffer];
  assert.equal(res.statusCode, 200);
  assert.equal(head.length, 0);
  assert.equal(sock, client);
  sock.write('ping');
  const [chunk] = (await once(sock, 'data')) as [Buffer];
  assert.equal(chunk.toString(), 'ping');
  const ended = once(sock, 'end');
  sock.end();
  await ended;
  await serverClosed;
});

test('back-pressure: a writer to a non-reading peer is held near two high-water marks', { timeout: 30_000 }, async () => {
  const HWM = 64 * 1024;
  const TOTAL = 64 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  const [w, r] = createVConnPair({ highWaterMark: HWM });
  r.pause();
  const chunk = Buffer.alloc(CHUNK);
  const src = createHash('sha256');
  let sent = 0;
  let seq = 0;
  const next = (): Buffer => {
    const b = Buffer.from(chunk);
    b.writeUInt32BE(seq++, 0);
    src.update(b);
    sent += b.length;
    return b;
  };
  // Write until the pair pushes back, without reading.
  while (w.write(next()));
  await new Promise((res) => setImmediate(res));
  const buffered = w.writableLength + r.readableLength;
  assert.ok(buffered <= 2 * HWM + CHUNK, `buffered ${buffered} bytes`);
  assert.ok(sent <= 2 * HWM + CHUNK, `write() said true for ${sent} bytes`);
  assert.equal(w.writableNeedDrain, true);

  // Now read everything while writing the rest with drain; the buffer stays bounded throughout.
  const dst = createHash('sha256');
  let received = 0;
  let maxBuffered = 0;
  r.on('data', (c: Buffer) => {
    dst.update(c);
    received += c.length;
    maxBuffered = Math.max(maxBuffered, w.writableLength + r.readableLength);
  });
  const ended = once(r, 'end');
  r.resume();
  while (sent < TOTAL) {
    if (!w.write(next())) await once(w, 'drain');
  }
  w.end();
  await ended;
  assert.equal(received, TOTAL);
  assert.equal(dst.digest('hex'), src.digest('hex'));
  assert.ok(maxBuffered <= 2 * HWM + CHUNK, `max buffered ${maxBuffered}`);
});

test('half-close: end() on one side is end on the other, which still writes back', { timeout: 5000 }, async () => {
  const [a, b] = createVConnPair();
  const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
  const fromA = collect(b);
  a.write('request');
  a.end();
  assert.equal((await fromA).toString(), 'request');
  assert.equal(b.writable, true);
  const fromB = collect(a);
  b.write('response part 1, ');
  b.end('part 2');
  assert.equal((await fromB).toString(), 'response part 1, part 2');
  await closed;
});

test('destroy with unread bytes resets the peer with ECONNRESET', { timeout: 5000 }, async () => {
  const [a, b] = createVConnPair();
  const err = once(b, 'error');
  const closed = new Promise((resolve) => b.once('close', resolve));
  b.write('never read by a');
  a.destroy();
  const [e] = (await err) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
  await closed;
  assert.ok(b.destroyed);
});

test('resetAndDestroy resets the peer even with nothing unread', { timeout: 5000 }, async () => {
  const [a, b] = createVConnPair();
  const err = once(b, 'error');
  a.resetAndDestroy();
  const [e] = (await err) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
});

test('destroy with nothing unread is a FIN: the peer reads what was sent, then end; its writes fail with EPIPE', { timeout: 5000 }, async () => {
  for (const endFirst of [true, false]) {
    const [a, b] = createVConnPair();
    if (endFirst) {
      a.end('last words');
      await once(a, 'finish');
    } else a.write('last words');
    a.destroy();
    const got = await collect(b);
    assert.equal(got.toString(), 'last words');
    const err = once(b, 'error');
    b.write('anyone?');
    const [e] = (await err) as [NodeJS.ErrnoException];
    assert.equal(e.code, 'EPIPE');
  }
});

test('http.Server error reply then destroy still reaches the client', { timeout: 5000 }, async (t) => {
  const server = http.createServer(() => assert.fail('no request expected'));
  t.after(() => server.close());
  const [client, serverEnd] = createVConnPair();
  server.emit('connection', serverEnd);
  const reply = collect(client);
  client.write('GET / HTTP/1.1\r\nHost : bad\r\n\r\n');
  assert.match((await reply).toString('latin1'), /^HTTP\/1\.1 400 Bad Request\r\n/);
});

test('a writer blocked on a full peer is reset when the peer closes without reading', { timeout: 5000 }, async () => {
  const [a, b] = createVConnPair({ highWaterMark: 1024 });
  b.end();
  await once(b, 'finish');
  a.resume();
  while (a.write(Buffer.alloc(1024)));
  const err = once(a, 'error');
  b.destroy();
  const [e] = (await err) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
});

test('setTimeout emits timeout after inactivity, and activity postpones it', { timeout: 5000 }, async () => {
  const [a, b] = createVConnPair();
  b.resume();
  const start = Date.now();
  a.setTimeout(150);
  const writer = setInterval(() => a.write('.'), 30);
  setTimeout(() => clearInterval(writer), 300);
  await once(a, 'timeout');
  assert.ok(Date.now() - start >= 400, `timeout after ${Date.now() - start} ms`);
  a.setTimeout(0);
  a.destroy();
});
