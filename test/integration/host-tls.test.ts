/**
 * Inbound TLS on an `ssl` port (ats.md 2.3 TLS hooks, 3.2; security.md 18): the ssl_multicert
 * certificate chosen by SNI, certification_level 2, and a VConn tunnel decided at SSL_CLIENT_HELLO
 * that carries the client's TLS to a backend end to end.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { before, test } from 'node:test';
import type { TestContext } from 'node:test';
import tls from 'node:tls';
import { Event, HookId, VConnHookId } from '../../host/api/index.js';
import type { Api } from '../../host/api/index.js';
import { loadPair, makePki } from '../helpers/pki.js';
import type { CertPair, Pki } from '../helpers/pki.js';
import { httpOrigin, tlsOrigin } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { has } from '../helpers/tools.js';
import { Conn, loopbackPorts, startHost, waitUntil } from '../host/harness.js';
import type { StartedHost } from '../host/harness.js';

const T = { timeout: 20_000, skip: has('openssl') ? false : 'openssl not installed: the test PKI is made with it' };

let pki: Pki;
let certA: CertPair;
let certB: CertPair;
before(async () => {
  if (T.skip) return;
  pki = await makePki();
  [certA, certB] = await Promise.all([pki.server('a.test'), pki.server('b.test')]);
});

/** Open TLS to the ssl port with `servername`, trusting the test CA. */
async function tlsConn(port: number, servername: string, extra: tls.ConnectionOptions = {}): Promise<Conn> {
  const s = tls.connect({ port, host: '127.0.0.1', servername, ca: readFileSync(pki.ca), ...extra });
  const c = new Conn(s);
  await once(s, 'secureConnect');
  return c;
}

interface TlsHostOptions {
  readonly records?: Record<string, unknown>;
  readonly plugin?: (api: Api) => void;
}

/** A host with one ssl port, certificates A (`dest_ip=*`) and B, and a READ_REQUEST_HDR counter. */
async function tlsHost(t: TestContext, origin: TestServer, o: TlsHostOptions = {}): Promise<StartedHost & { requests: () => number }> {
  let requests = 0;
  const h = await startHost(
    t,
    {
      records: { 'http.server_ports': loopbackPorts('ssl'), ...o.records },
      sslMulticert: `dest_ip=* ssl_cert_name=${certA.cert} ssl_key_name=${certA.key}\nssl_cert_name=${certB.cert} ssl_key_name=${certB.key}\n`,
      remap: `map https://a.test/ http://127.0.0.1:${origin.port}/a/\nmap https://b.test/ http://127.0.0.1:${origin.port}/b/\n`,
    },
    {
      plugins: {
        counter: (api) =>
          api.httpHookAdd(HookId.HttpReadRequestHdr, (txn) => {
            requests++;
            txn.reenable(Event.HttpContinue);
          }),
        ...(o.plugin ? { tested: o.plugin } : {}),
      },
    },
  );
  return { ...h, requests: () => requests };
}

async function get(c: Conn, host: string, path: string): Promise<string> {
  c.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const res = await c.response();
  assert.equal(res.status, 200, res.statusLine);
  return res.body.toString();
}

test('an ssl port terminates TLS with the ssl_multicert certificate SNI selects, then serves HTTP', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const h = await tlsHost(t, origin);
  for (const [name, path] of [
    ['a.test', '/a/x'],
    ['b.test', '/b/x'],
  ] as const) {
    const c = await tlsConn(h.port('ssl'), name);
    assert.equal((c.socket as tls.TLSSocket).getPeerCertificate().subject?.CN, name);
    assert.equal(await get(c, name, '/x'), `GET ${path}\n`);
    c.close();
  }
  // A name no certificate has: the dest_ip=* certificate (and no remap rule: 404).
  const c = await tlsConn(h.port('ssl'), 'other.test', { checkServerIdentity: () => undefined });
  assert.equal((c.socket as tls.TLSSocket).getPeerCertificate().subject?.CN, 'a.test');
  c.write('GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n');
  assert.equal((await c.response()).statusLine, 'HTTP/1.1 404 Not Found on Accelerator');
  c.close();
  assert.equal(h.requests(), 3);
});

test('certification_level 2: a client without a certificate never reaches a hook; one with a CA-signed certificate does', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const h = await tlsHost(t, origin, { records: { 'ssl.client.certification_level': 2, 'ssl.CA.cert.filename': pki.ca } });

  const s = tls.connect({ port: h.port('ssl'), host: '127.0.0.1', servername: 'a.test', ca: readFileSync(pki.ca) });
  const anon = new Conn(s);
  s.once('secureConnect', () => anon.write('GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n'));
  await anon.until(() => anon.closed, 5000, 'the handshake to be refused');
  assert.equal(anon.pending.length, 0, 'no HTTP response without a client certificate');

  const untrusted = tls.connect({ port: h.port('ssl'), host: '127.0.0.1', servername: 'a.test', ca: readFileSync(pki.ca), ...loadPair(pki.untrusted.server) });
  const bad = new Conn(untrusted);
  untrusted.once('secureConnect', () => bad.write('GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n'));
  await bad.until(() => bad.closed, 5000, 'a certificate from another CA to be refused');
  assert.equal(bad.pending.length, 0);
  assert.equal(h.requests(), 0, 'READ_REQUEST_HDR never ran');

  const alice = await tlsConn(h.port('ssl'), 'a.test', loadPair(await pki.client('alice')));
  assert.equal(await get(alice, 'a.test', '/y'), 'GET /a/y\n');
  alice.close();
  assert.equal(h.requests(), 1);
});

test('a VConn tunnel at SSL_CLIENT_HELLO: the client completes TLS with the backend, end to end', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const backendCert = await pki.server('backend.test');
  const backend = await tlsOrigin({ cert: backendCert.cert, key: backendCert.key });
  t.after(() => backend.close());
  const seen: { hook: string; sni: string | null; alpn: readonly string[] }[] = [];
  const h = await tlsHost(t, origin, {
    plugin: (api) => {
      for (const id of [VConnHookId.VconnStart, VConnHookId.SslClientHello, VConnHookId.VconnClose]) {
        api.vconnHookAdd(id, (vc, hook) => {
          seen.push({ hook, sni: vc.sni, alpn: vc.alpn });
          if (hook === VConnHookId.SslClientHello && vc.sni === 'backend.test') vc.tunnel({ host: '127.0.0.1', port: backend.port });
          else vc.reenable();
        });
      }
    },
  });
  const c = await tlsConn(h.port('ssl'), 'backend.test', { ALPNProtocols: ['x-test'] });
  const cert = (c.socket as tls.TLSSocket).getPeerCertificate();
  assert.equal(cert.subject?.CN, 'backend.test', 'the client sees the backend certificate, not the proxy one');
  c.write('through the tunnel');
  assert.equal((await c.bytes(18)).toString(), 'through the tunnel');
  assert.equal(backend.handshakes.at(-1)?.servername, 'backend.test', 'the backend got the client ClientHello (SNI) unchanged');
  c.close();
  await waitUntil(() => seen.some((s) => s.hook === VConnHookId.VconnClose), 3000, 'VCONN_CLOSE');
  assert.deepEqual(
    seen.map((s) => s.hook),
    [VConnHookId.VconnStart, VConnHookId.SslClientHello, VConnHookId.VconnClose],
  );
  assert.equal(seen[0]?.sni, null, 'no SNI before the ClientHello');
  assert.equal(seen[1]?.sni, 'backend.test');
  assert.deepEqual(seen[1]?.alpn, ['x-test']);
  assert.equal(h.requests(), 0, 'a blind tunnel runs no HTTP hook');

  // The other names are still terminated here.
  const a = await tlsConn(h.port('ssl'), 'a.test');
  assert.equal(await get(a, 'a.test', '/z'), 'GET /a/z\n');
  a.close();
});

test('vc.reject at SSL_CLIENT_HELLO closes the connection with an alert; nothing is served', T, async (t) => {
  const origin = await httpOrigin();
  t.after(() => origin.close());
  const h = await tlsHost(t, origin, {
    plugin: (api) => api.vconnHookAdd(VConnHookId.SslClientHello, (vc) => (vc.sni === 'a.test' ? vc.reject('not today') : vc.reenable())),
  });
  const s = tls.connect({ port: h.port('ssl'), host: '127.0.0.1', servername: 'a.test', ca: readFileSync(pki.ca) });
  const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
  assert.match(err.code ?? err.message, /ALERT_ACCESS_DENIED|ECONNRESET/);
  const b = await tlsConn(h.port('ssl'), 'b.test');
  assert.equal(await get(b, 'b.test', '/ok'), 'GET /b/ok\n');
  b.close();
});
