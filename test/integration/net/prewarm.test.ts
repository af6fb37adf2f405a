/**
 * The pre-warm pool on real TLS: spares made by `dial` to a TLS server here, taken, dropped when
 * the server closes them or speaks first, expired when unused, never re-dialled after a failure
 * until asked again.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { dial } from '../../../host/net/dial.js';
import { PrewarmPool, type Warmed } from '../../../host/net/prewarm.js';
import { buildClientTlsContext } from '../../../host/net/tls-context.js';
import { hasOpenssl, makePki, SSL_BASE, type Pki } from './certs.js';

let pki: Pki | null = null;
before(() => {
  if (hasOpenssl()) pki = makePki();
});
after(() => pki?.remove());

const T = { timeout: 20_000 };

interface Peer {
  readonly port: number;
  /** Server-side sockets in accept order. */
  readonly conns: tls.TLSSocket[];
  /** Resolves once `n` connections have completed their handshake. */
  connections(n: number): Promise<void>;
}

/** A TLS server that answers `ping` with `pong` and never speaks first. */
async function peer(t: TestContext, k: Pki): Promise<Peer> {
  const conns: tls.TLSSocket[] = [];
  const waiters: (() => void)[] = [];
  const server = tls.createServer({ cert: k.server.certPem, key: k.server.keyPem }, (s) => {
    conns.push(s);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      if (d.toString() === 'ping') s.write('pong');
    });
    for (const w of waiters.splice(0)) w();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of conns) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    connections: (n) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (conns.length >= n) resolve();
          else waiters.push(check);
        };
        check();
      }),
  };
}

/** A pool dialling TLS to 127.0.0.1 with the test CA; `dials` counts the attempts. */
function pool(k: Pki, opts: { min: number; inactiveTimeoutMs?: number; fail?: () => boolean }): { pool: PrewarmPool; dials: () => number } {
  const tlsClient = buildClientTlsContext({ ...SSL_BASE, clientCa: k.ca });
  let dials = 0;
  const p = new PrewarmPool({ min: opts.min, inactiveTimeoutMs: opts.inactiveTimeoutMs ?? 10_000 }, async (host, port) => {
    dials++;
    if (opts.fail?.() === true) return null;
    const d = await dial({ host, port, tls: true, servername: 'peer.test', timeoutMs: 2000, handshakeTimeoutMs: 2000, hosts: { lookup: () => [] }, checkOut: () => ({ allow: true, by: 'test' }), tlsClient });
    return { socket: d.socket, address: d.address };
  });
  return { pool: p, dials: () => dials };
}

/** Poll `cond` until true (every 10 ms, at most `ms`). */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A taken connection is paused: the taker resumes it. */
async function pingPong(w: Warmed): Promise<string> {
  assert.equal(w.socket.readableFlowing, false);
  w.socket.write('ping');
  const data = once(w.socket, 'data');
  w.socket.resume();
  const [d] = (await data) as [Buffer];
  return d.toString();
}

test('the first take misses and warms min spares; the next takes get working connections', T, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const srv = await peer(t, pki);
  const { pool: p, dials } = pool(pki, { min: 2 });
  t.after(() => p.close());
  assert.equal(p.take('127.0.0.1', srv.port), null);
  await srv.connections(2);
  await until(() => dials() === 2);
  // Spares become takeable once their dial resolved (after the server-side handshake).
  const taken: Warmed[] = [];
  await until(() => {
    const w = p.take('127.0.0.1', srv.port);
    if (w !== null) taken.push(w);
    return w !== null;
  });
  const w = taken[0];
  assert.ok(w);
  assert.equal(await pingPong(w), 'pong');
  // The take topped the pool back up to two spares.
  await srv.connections(3);
  assert.equal(dials(), 3);
  w.socket.destroy();
});

test('a spare the server closes, or that receives a byte first, is dropped, never handed out', T, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const srv = await peer(t, pki);
  const { pool: p, dials } = pool(pki, { min: 2 });
  t.after(() => p.close());
  p.take('127.0.0.1', srv.port);
  await srv.connections(2);
  await until(() => dials() === 2);
  srv.conns[0]?.destroy();
  srv.conns[1]?.write('unexpected');
  // Both spares are gone once their client sides have seen it: nothing to take, and each take tops up.
  await until(() => {
    const w = p.take('127.0.0.1', srv.port);
    if (w !== null) {
      // Only a fresh connection (made by the top-ups) may come out, and it must work.
      assert.ok(dials() > 2, 'a dropped spare was handed out');
      w.socket.destroy();
      return true;
    }
    return false;
  });
});

test('an unused spare is closed after inactive_timeout and not replaced', T, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const srv = await peer(t, pki);
  const { pool: p, dials } = pool(pki, { min: 1, inactiveTimeoutMs: 200 });
  t.after(() => p.close());
  p.take('127.0.0.1', srv.port);
  await srv.connections(1);
  const spare = srv.conns[0];
  assert.ok(spare);
  await once(spare, 'close');
  assert.equal(dials(), 1, 'no replacement without a take');
  assert.equal(p.take('127.0.0.1', srv.port), null);
});

test('a failed top-up is not retried until the next take', T, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const srv = await peer(t, pki);
  let failing = true;
  const { pool: p, dials } = pool(pki, { min: 1, fail: () => failing });
  t.after(() => p.close());
  assert.equal(p.take('127.0.0.1', srv.port), null);
  await until(() => dials() === 1);
  // Give a retry loop every chance to show itself: other work runs, no new dial starts.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(dials(), 1);
  failing = false;
  assert.equal(p.take('127.0.0.1', srv.port), null);
  await srv.connections(1);
  assert.equal(dials(), 2);
});

test('close() destroys the spares and later takes return null', T, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const srv = await peer(t, pki);
  const { pool: p, dials } = pool(pki, { min: 2 });
  p.take('127.0.0.1', srv.port);
  await srv.connections(2);
  await until(() => dials() === 2);
  p.close();
  await Promise.all(srv.conns.map((s) => (s.destroyed ? Promise.resolve() : once(s, 'close'))));
  assert.equal(p.take('127.0.0.1', srv.port), null);
  assert.equal(dials(), 2);
});
