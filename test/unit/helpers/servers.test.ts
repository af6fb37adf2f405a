import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { loadPair, makePki } from '../../helpers/pki.js';
import { echoServer, httpOrigin, sinkServer, tlsOrigin } from '../../helpers/servers.js';
import { requireTool } from '../../helpers/tools.js';

/** Writes `data`, half-closes, and resolves with everything read until the peer's FIN. */
function exchange(port: number, data: string | Buffer, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ port, host, allowHalfOpen: true });
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(chunks));
    });
    s.on('error', reject);
    s.end(data);
  });
}

function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function closedBy(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    s.on('error', () => {});
    s.once('close', () => resolve());
  });
}

test('echoServer echoes and answers a half-close with FIN; close() closes open connections', { timeout: 10_000 }, async (t) => {
  const echo = await echoServer();
  t.after(() => echo.close());
  const bytes = Buffer.from([0x61, 0x00, 0xff, 0x0d, 0x0a]);
  assert.deepEqual(await exchange(echo.port, bytes), bytes);
  const idle = await connected(echo.port);
  const gone = closedBy(idle);
  await echo.close();
  await gone;
  await assert.rejects(connected(echo.port), { code: 'ECONNREFUSED' });
  await echo.close(); // twice is fine
});

test('echoServer on ::1', { timeout: 10_000 }, async (t) => {
  const echo = await echoServer({ host: '::1' }).catch((e: NodeJS.ErrnoException) => e);
  if (echo instanceof Error) {
    t.skip(`no IPv6 loopback: ${echo.code ?? echo.message}`);
    return;
  }
  t.after(() => echo.close());
  assert.equal((await exchange(echo.port, 'v6', '::1')).toString(), 'v6');
});

test('sinkServer counts bytes and replies on half-close', { timeout: 10_000 }, async (t) => {
  const sink = await sinkServer();
  t.after(() => sink.close());
  assert.equal((await exchange(sink.port, Buffer.alloc(100_000))).toString(), 'received 100000\n');
  assert.equal((await exchange(sink.port, 'xy')).toString(), 'received 2\n');
  assert.equal(sink.bytes(), 100_002);
});

test('httpOrigin: default handler and a custom one', { timeout: 10_000 }, async (t) => {
  const plain = await httpOrigin();
  t.after(() => plain.close());
  const get = (port: number, path: string): Promise<{ status: number; body: string; origin: string | undefined }> =>
    new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, origin: res.headers['x-origin'] as string | undefined }));
      })
        .on('error', reject)
        .end();
    });
  assert.deepEqual(await get(plain.port, '/a?b'), { status: 200, body: 'GET /a?b\n', origin: 'plain' });
  const custom = await httpOrigin((_req, res) => res.writeHead(418).end('teapot'));
  t.after(() => custom.close());
  assert.deepEqual(await get(custom.port, '/'), { status: 418, body: 'teapot', origin: undefined });
});

test('tlsOrigin: echo over TLS, records SNI and client CN, refuses a client without a cert when asked', { timeout: 20_000 }, async (t) => {
  if (!requireTool(t, 'openssl', 'the PKI is made with it')) return;
  const pki = await makePki();
  const origin = await tlsOrigin({ ...(await pki.server('origin.test', ['127.0.0.1'])), ca: pki.ca, requestCert: true });
  t.after(() => origin.close());
  const client = loadPair(await pki.client('c1'));
  const talk = (withCert: boolean): Promise<string> =>
    new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: origin.port, servername: 'origin.test', ca: readFileSync(pki.ca), ...(withCert ? client : {}) });
      let got = '';
      s.on('secureConnect', () => s.end('ping'));
      s.on('data', (b: Buffer) => (got += b.toString()));
      s.on('end', () => resolve(got));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    });
  assert.equal(await talk(true), 'ping');
  assert.deepEqual(origin.handshakes, [{ servername: 'origin.test', alpn: null, authorized: true, peerCn: 'c1' }]);
  assert.match(await talk(false), /^error (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ECONNRESET)/);
});
