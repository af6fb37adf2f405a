import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import tls from 'node:tls';
import { PEEK_MAX_BYTES, peekClientHello } from '../../../host/net/tls-peek.js';
import type { PeekOptions, PeekResult } from '../../../host/net/tls-peek.js';
import { captureClientHello, ext, fragment, helloRecords, sniData } from './client-hello-fixtures.js';

const T = { timeout: 15_000 };

interface Accepted {
  /** The server side of the connection. */
  readonly socket: net.Socket;
  /** Reads the server socket has delivered so far (each is one 'data' event the peek saw too). */
  reads(): number;
  readonly result: Promise<PeekResult>;
  /** Listener counts on the socket just before the peek started. */
  readonly baseline: Readonly<Record<string, number>>;
}

const EVENTS = ['data', 'end', 'close', 'error', 'readable'] as const;

/** A loopback server that peeks every connection it accepts; everything closed after the test. */
async function peekServer(t: TestContext, opts: PeekOptions): Promise<{ port: number; accepted: () => Promise<Accepted> }> {
  const pending: Accepted[] = [];
  let waiter: ((a: Accepted) => void) | null = null;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    let reads = 0;
    const count = (): void => void reads++;
    socket.on('data', count);
    const baseline = Object.fromEntries(EVENTS.map((e) => [e, socket.listenerCount(e)]));
    const result = peekClientHello(socket, opts).then((r) => {
      socket.off('data', count);
      return r;
    });
    const a: Accepted = { socket, reads: () => reads, result, baseline };
    t.after(() => socket.destroy());
    if (waiter) {
      waiter(a);
      waiter = null;
    } else pending.push(a);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => {
      const a = pending.shift();
      return a ? Promise.resolve(a) : new Promise<Accepted>((r) => (waiter = r));
    },
  };
}

async function connect(t: TestContext, port: number): Promise<net.Socket> {
  const c = net.connect({ host: '127.0.0.1', port, noDelay: true });
  c.on('error', () => {});
  t.after(() => c.destroy());
  await once(c, 'connect');
  return c;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Write `bytes` one per TCP segment: each byte is sent after the server has read the one before. */
async function writeByteByByte(c: net.Socket, a: Accepted, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    const before = a.reads();
    c.write(bytes.subarray(i, i + 1));
    await until(() => a.reads() > before, `the server to read byte ${i}`);
  }
}

function failure(r: PeekResult, kind: string): string {
  assert.equal(r.kind, kind, r.kind === 'hello' ? 'got a hello' : r.reason);
  return r.kind === 'hello' ? '' : r.reason;
}

describe('peekClientHello with real sockets', () => {
  test('a whole ClientHello: hello, raw is the bytes sent, socket paused, listeners removed', T, async (t) => {
    const hello = await captureClientHello({ servername: 'Peek.Example.', alpn: ['h2'] });
    const srv = await peekServer(t, { timeoutMs: 5000 });
    const c = await connect(t, srv.port);
    c.write(hello);
    const a = await srv.accepted();
    const r = await a.result;
    assert.equal(r.kind, 'hello');
    if (r.kind !== 'hello') return;
    assert.equal(r.hello.sni, 'peek.example');
    assert.deepEqual(r.hello.alpn, ['h2']);
    assert.deepEqual(r.raw, hello);
    assert.equal(a.socket.isPaused(), true);
    const counts = Object.fromEntries(EVENTS.map((e) => [e, a.socket.listenerCount(e)]));
    assert.deepEqual(counts, { ...a.baseline, data: a.baseline.data! - 1 }); // minus the test's own counter
  });

  test('1-byte TCP segments (setNoDelay) of 1-byte records: the same hello, every byte kept', T, async (t) => {
    const hello = fragment(await captureClientHello({ servername: 'slow.example' }), 1);
    const srv = await peekServer(t, { timeoutMs: 10_000 });
    const c = await connect(t, srv.port);
    const a = await srv.accepted();
    await writeByteByByte(c, a, hello);
    const r = await a.result;
    assert.equal(r.kind, 'hello');
    if (r.kind !== 'hello') return;
    assert.equal(r.hello.sni, 'slow.example');
    assert.deepEqual(r.raw, hello);
    assert.equal(a.reads(), hello.length, 'one read per byte');
  });

  test('bytes after the ClientHello stay readable in order after the peek', T, async (t) => {
    const hello = await captureClientHello({ servername: 'replay.example' });
    const srv = await peekServer(t, { timeoutMs: 5000 });
    const c = await connect(t, srv.port);
    const a = await srv.accepted();
    c.write(Buffer.concat([hello, Buffer.from('AB')]));
    const r = await a.result;
    assert.equal(r.kind, 'hello');
    c.end('CD');
    a.socket.unshift(r.raw);
    const chunks: Buffer[] = [];
    a.socket.on('data', (d: Buffer) => chunks.push(d));
    a.socket.resume();
    await once(a.socket, 'end');
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat([hello, Buffer.from('ABCD')]));
  });

  test('raw replayed with unshift completes a real TLS handshake (the caller terminates TLS)', T, async (t) => {
    const pki = makeCert(t);
    if (!pki) return;
    const srv = await peekServer(t, { timeoutMs: 5000 });
    const client = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'peek.test', ca: pki.cert });
    client.on('error', () => {});
    t.after(() => client.destroy());
    const a = await srv.accepted();
    const r = await a.result;
    assert.equal(r.kind, 'hello');
    if (r.kind !== 'hello') return;
    assert.equal(r.hello.sni, 'peek.test');
    a.socket.unshift(r.raw);
    const server = new tls.TLSSocket(a.socket, { isServer: true, key: pki.key, cert: pki.cert });
    server.on('error', () => {});
    server.on('data', (d: Buffer) => server.write(d)); // echo
    await once(client, 'secureConnect');
    client.write('ping');
    const [echo] = (await once(client, 'data')) as [Buffer];
    assert.equal(echo.toString(), 'ping');
  });

  test('a silent client times out; partial bytes are in raw', T, async (t) => {
    const hello = await captureClientHello({ servername: 'half.example' });
    const srv = await peekServer(t, { timeoutMs: 150 });
    const c = await connect(t, srv.port);
    c.write(hello.subarray(0, 20));
    const a = await srv.accepted();
    const r = await a.result;
    assert.match(failure(r, 'timeout'), /within 150 ms/);
    assert.deepEqual(r.raw, hello.subarray(0, 20));
    assert.equal(a.socket.destroyed, false, 'the peek does not close the socket');
  });

  test('a ClientHello over maxBytes is too_large, however it is segmented', T, async (t) => {
    const hello = await captureClientHello({ servername: 'big.example' });
    const max = hello.length - 1;
    const srv = await peekServer(t, { timeoutMs: 5000, maxBytes: max });
    const c1 = await connect(t, srv.port);
    c1.write(hello); // one write: may arrive in one read, longer than the cap
    const r1 = await (await srv.accepted()).result;
    assert.match(failure(r1, 'too_large'), new RegExp(`in ${max} bytes`));
    const c2 = await connect(t, srv.port);
    const a2 = await srv.accepted();
    await writeByteByByte(c2, a2, hello.subarray(0, max));
    assert.match(failure(await a2.result, 'too_large'), /no complete ClientHello/);
  });

  test('exactly maxBytes is accepted', T, async (t) => {
    const hello = await captureClientHello({ servername: 'fits.example' });
    const srv = await peekServer(t, { timeoutMs: 5000, maxBytes: hello.length });
    const c = await connect(t, srv.port);
    c.write(hello);
    assert.equal((await (await srv.accepted()).result).kind, 'hello');
  });

  test('100 KiB of padding is capped at maxBytes (and maxBytes at 64 KiB)', T, async (t) => {
    const big = helloRecords({ suites: Buffer.alloc(60_000, 0x0a), extensions: [ext(21, Buffer.alloc(60_000)), ext(0, sniData([0, 'pad.example']))] });
    const srv = await peekServer(t, { timeoutMs: 5000, maxBytes: 1 << 20 });
    const c = await connect(t, srv.port);
    c.write(big);
    const a = await srv.accepted();
    const r = await a.result;
    assert.match(failure(r, 'too_large'), new RegExp(`in ${PEEK_MAX_BYTES} bytes`));
    assert.ok(r.raw.length >= PEEK_MAX_BYTES && r.raw.length < big.length, `raw ${r.raw.length}`);
  });

  test('garbage and HTTP are invalid at once', T, async (t) => {
    const srv = await peekServer(t, { timeoutMs: 5000 });
    const c = await connect(t, srv.port);
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(failure(await (await srv.accepted()).result, 'invalid'), /record type 71/);
    const c2 = await connect(t, srv.port);
    c2.write(Buffer.from([22, 3, 1, 0xff, 0xff]));
    assert.match(failure(await (await srv.accepted()).result, 'invalid'), /record length 65535/);
  });

  test('early close: a truncated ClientHello then FIN is closed', T, async (t) => {
    const hello = await captureClientHello({ servername: 'trunc.example' });
    const srv = await peekServer(t, { timeoutMs: 5000 });
    const c = await connect(t, srv.port);
    c.end(hello.subarray(0, 40));
    const r = await (await srv.accepted()).result;
    assert.match(failure(r, 'closed'), /after 40 bytes/);
    assert.equal(r.raw.length, 40);
  });

  test('a reset connection is closed', T, async (t) => {
    const srv = await peekServer(t, { timeoutMs: 5000 });
    const c = await connect(t, srv.port);
    const a = await srv.accepted();
    c.write(Buffer.from([22, 3, 1]));
    await until(() => a.reads() > 0, 'the first bytes');
    c.resetAndDestroy();
    assert.equal((await a.result).kind, 'closed');
  });

  test('a socket already ended resolves closed at once', T, async (t) => {
    const srv = await peekServer(t, { timeoutMs: 5000 });
    const c = await connect(t, srv.port);
    c.end('x');
    const a = await srv.accepted();
    await a.result; // first peek: invalid ('x' is not a TLS record)
    a.socket.resume();
    if (!a.socket.readableEnded) await once(a.socket, 'end');
    const again = await peekClientHello(a.socket, { timeoutMs: 5000 });
    assert.match(failure(again, 'closed'), /already closed/);
  });
});

/** A self-signed certificate for peek.test from the openssl CLI, or null (test skipped) without it. */
function makeCert(t: TestContext): { key: Buffer; cert: Buffer } | null {
  const dir = mkdtempSync(join(tmpdir(), 'peek-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=peek.test', '-addext', 'subjectAltName=DNS:peek.test',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  } catch (err) {
    t.skip(`openssl not usable: ${(err as Error).message}`);
    return null;
  }
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
}
