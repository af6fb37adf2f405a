import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import type { HostsTable, VerifyServerPolicy, VerifyServerProperties } from '../../../host/config/types.js';
import { diags } from '../../../host/diags.js';
import { dial, type DialOptions, type Dialed } from '../../../host/net/dial.js';
import { classify, isFailure, type Failure } from '../../../host/net/proxy-status.js';
import { buildClientTlsContext, type ClientTlsContext } from '../../../host/net/tls-context.js';
import { TlsSessionCache } from '../../../host/net/tls-sessions.js';
import { hasOpenssl, makePki, SSL_BASE, type Pki } from './certs.js';

function hostsTable(entries: Record<string, string[]>): HostsTable {
  return { lookup: (name) => entries[name.toLowerCase()] ?? [] };
}

const HOSTS = hostsTable({
  'peer.test': ['127.0.0.1'],
  'wrong.test': ['127.0.0.1'],
  'both.test': ['::1', '127.0.0.1'],
});

function opts(o: Partial<DialOptions> & Pick<DialOptions, 'host' | 'port'>): DialOptions {
  return { tls: false, timeoutMs: 2000, handshakeTimeoutMs: 2000, hosts: HOSTS, checkOut: () => ({ allow: true, by: 'default' }), ...o };
}

async function rejection(p: Promise<Dialed>): Promise<Failure> {
  try {
    const d = await p;
    d.socket.destroy();
  } catch (e) {
    assert.ok(isFailure(e), `dial must reject with a Failure, got ${String(e)}`);
    return e;
  }
  return assert.fail('dial resolved');
}

async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** A port with nothing listening on 127.0.0.1 (nor ::1). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  s.close();
  await once(s, 'close');
  return port;
}

/** Echo a greeting, then the bytes received; counts connections. */
function greeter(): { server: net.Server; count: () => number } {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.on('error', () => {});
    s.end('hello');
  });
  return { server, count: () => n };
}

async function readAll(s: net.Socket): Promise<string> {
  let out = '';
  s.setEncoding('latin1');
  s.on('data', (d: string) => (out += d));
  await once(s, 'end');
  return out;
}

test('refused: connection_refused 502, fast', { timeout: 5000 }, async () => {
  const port = await deadPort();
  const start = Date.now();
  const f = await rejection(dial(opts({ host: '127.0.0.1', port })));
  assert.equal(f.type, 'connection_refused');
  assert.equal(f.status, 502);
  assert.equal(f.reason, 'Connection Refused');
  assert.ok(Date.now() - start < 1000);
});

test('hosts table first; the next address is tried when one refuses', { timeout: 5000 }, async (t) => {
  const g = greeter();
  const port = await listen(g.server, '127.0.0.1');
  t.after(() => g.server.close());
  const seen: string[] = [];
  const d = await dial(opts({ host: 'BOTH.test', port, checkOut: (ip) => (seen.push(ip), { allow: true, by: 'x' }) }));
  assert.equal(d.address, '127.0.0.1');
  assert.deepEqual(seen, ['::1', '127.0.0.1']);
  assert.equal(await readAll(d.socket), 'hello');
  const viaName = await dial(opts({ host: 'peer.test', port }));
  assert.equal(viaName.address, '127.0.0.1');
  assert.equal(await readAll(viaName.socket), 'hello');
});

test('IP literals, bracketed IPv6 too, skip DNS', { timeout: 5000 }, async (t) => {
  const g = greeter();
  const port = await listen(g.server, '::1');
  t.after(() => g.server.close());
  const d = await dial(opts({ host: '[::1]', port, hosts: hostsTable({}) }));
  assert.equal(d.address, '::1');
  assert.equal(await readAll(d.socket), 'hello');
});

test('checkOut is applied to EVERY address before dialing: one denied address denies all, nothing dialled', { timeout: 5000 }, async (t) => {
  const g = greeter();
  const port = await listen(g.server, '127.0.0.1');
  t.after(() => g.server.close());
  const f = await rejection(
    dial(opts({ host: 'both.test', port, checkOut: (ip) => (ip === '127.0.0.1' ? { allow: false, by: '/etc/tsproxy/ip_allow.yaml:7' } : { allow: true, by: 'x' }) })),
  );
  assert.equal(f.type, 'destination_ip_prohibited');
  assert.equal(f.status, 403);
  assert.equal(f.reason, 'Access Denied');
  assert.equal(f.detail, 'both.test (127.0.0.1) denied by ip_allow ip_allow.yaml:7');
  const lit = await rejection(dial(opts({ host: '[::1]', port, checkOut: () => ({ allow: false, by: 'default' }) })));
  assert.equal(lit.type, 'destination_ip_prohibited');
  // Let any stray connection arrive before counting.
  await new Promise((r) => setImmediate(r));
  assert.equal(g.count(), 0);
});

test('an unresolvable name is a dns_error (or dns_timeout), never a raw error', { timeout: 10_000 }, async () => {
  const f = await rejection(dial(opts({ host: 'no-such-host.invalid', port: 80, timeoutMs: 3000 })));
  assert.ok(f.type === 'dns_error' || f.type === 'dns_timeout', f.type);
  assert.ok(f.status === 502 || f.status === 504);
});

/** A listener that never accepts: backlog 0, filled, so further SYNs are dropped (a blackhole). */
async function blackhole(t: { after: (fn: () => void) => void; skip: (m: string) => void }): Promise<number | null> {
  if (spawnSync('python3', ['-c', 'pass']).status !== 0) {
    t.skip('python3 not found: cannot make a listener that never accepts');
    return null;
  }
  const py = spawn('python3', ['-c', "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()"], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => py.kill());
  const [line] = (await once(py.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const fillers: net.Socket[] = [];
  t.after(() => fillers.forEach((f) => f.destroy()));
  for (let i = 0; i < 10; i++) {
    const f = net.connect({ host: '127.0.0.1', port });
    f.on('error', () => {});
    fillers.push(f);
    const connected = await Promise.race([once(f, 'connect').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
    if (!connected) return port;
  }
  t.skip('could not fill the listen backlog');
  return null;
}

test('connect timeout: connection_timeout 504 Connect Timeout', { timeout: 15_000 }, async (t) => {
  const port = await blackhole(t);
  if (port === null) return;
  const start = Date.now();
  const f = await rejection(dial(opts({ host: '127.0.0.1', port, timeoutMs: 300 })));
  const took = Date.now() - start;
  assert.equal(f.type, 'connection_timeout');
  assert.equal(f.status, 504);
  assert.equal(f.reason, 'Connect Timeout');
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
});

test('abort signal ends a pending dial at once', { timeout: 15_000 }, async (t) => {
  const port = await blackhole(t);
  if (port === null) return;
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const start = Date.now();
  const f = await rejection(dial(opts({ host: '127.0.0.1', port, timeoutMs: 5000, signal: ac.signal })));
  assert.equal(f.reason, 'Request Aborted');
  assert.ok(Date.now() - start < 1000);
  const pre = await rejection(dial(opts({ host: '127.0.0.1', port, signal: AbortSignal.abort() })));
  assert.equal(pre.reason, 'Request Aborted');
});

test('TLS handshake timeout: a server that accepts TCP and never speaks TLS', { timeout: 10_000 }, async (t) => {
  const silent = net.createServer((s) => s.on('error', () => {}));
  const port = await listen(silent);
  t.after(() => silent.close());
  const start = Date.now();
  const f = await rejection(dial(opts({ host: 'peer.test', port, tls: true, handshakeTimeoutMs: 300 })));
  assert.equal(f.type, 'connection_timeout');
  assert.equal(f.status, 504);
  assert.equal(f.reason, 'TLS Handshake Timeout');
  assert.ok(Date.now() - start >= 290);
});

test('TLS to a plain-text server is a tls_protocol_error', { timeout: 10_000 }, async (t) => {
  const plain = net.createServer((s) => {
    s.on('error', () => {});
    s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  const port = await listen(plain);
  t.after(() => plain.close());
  const f = await rejection(dial(opts({ host: 'peer.test', port, tls: true })));
  assert.ok(f.type === 'tls_protocol_error' || f.type === 'connection_terminated', f.type);
  assert.equal(f.status, 502);
});

// ---------------------------------------------------------------- TLS verification

let pki: Pki | null = null;
before(() => {
  if (hasOpenssl()) pki = makePki();
});
after(() => pki?.remove());


function clientCtx(k: Pki, policy: VerifyServerPolicy, properties: VerifyServerProperties, cert?: { cert: string; key: string }): ClientTlsContext {
  return buildClientTlsContext({
    ...SSL_BASE,
    clientCa: k.ca,
    verifyServerPolicy: policy,
    verifyServerProperties: properties,
    ...(cert ? { clientCert: cert.cert, clientKey: cert.key } : {}),
  });
}

interface TlsServer {
  readonly port: number;
  readonly sni: (string | false)[];
  readonly authorized: boolean[];
}

async function tlsServer(t: { after: (fn: () => void) => void }, cert: { certPem: string; keyPem: string }, mtls?: { ca: string }): Promise<TlsServer> {
  const sni: (string | false)[] = [];
  const authorized: boolean[] = [];
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem, ...(mtls ? { requestCert: true, rejectUnauthorized: true, ca: mtls.ca } : {}) }, (s) => {
    sni.push((s as tls.TLSSocket & { servername: string | false }).servername);
    authorized.push(s.authorized);
    s.on('error', () => {});
    s.end('secret');
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  t.after(() => server.close());
  return { port, sni, authorized };
}

/** Dial, then read to the end: the Failure (from the dial or, TLS 1.3 alerts, from the read), or the text. */
async function dialAndRead(o: DialOptions): Promise<Failure | string> {
  let d: Dialed;
  try {
    d = await dial(o);
  } catch (e) {
    assert.ok(isFailure(e));
    return e;
  }
  return new Promise((resolve) => {
    let out = '';
    let failed: Failure | null = null;
    d.socket.setEncoding('latin1');
    d.socket.on('data', (c: string) => (out += c));
    d.socket.on('error', (err) => (failed ??= classify(err, 'read')));
    d.socket.on('close', () => resolve(failed ?? out));
  });
}

test('TLS verification under each policy and property: good cert, wrong name, untrusted CA', { timeout: 30_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const good = await tlsServer(t, k.server);
  const untrusted = await tlsServer(t, k.untrustedServer);
  const notes: string[] = [];
  const prev = diags.setSink((line) => notes.push(line));
  t.after(() => diags.setSink(prev));
  const OK = 'secret';
  const NOTE = 'secret, with a NOTE';
  const CERT = 'tls_certificate_error';
  // [policy, properties, good, wrong name, untrusted]
  const matrix: [VerifyServerPolicy, VerifyServerProperties, string, string, string][] = [
    ['ENFORCED', 'ALL', OK, CERT, CERT],
    ['ENFORCED', 'SIGNATURE', OK, OK, CERT],
    ['ENFORCED', 'NAME', OK, CERT, OK],
    ['ENFORCED', 'NONE', OK, OK, OK],
    ['PERMISSIVE', 'ALL', OK, NOTE, NOTE],
    ['PERMISSIVE', 'SIGNATURE', OK, OK, NOTE],
    ['PERMISSIVE', 'NAME', OK, NOTE, OK],
    ['PERMISSIVE', 'NONE', OK, OK, OK],
    ['DISABLED', 'ALL', OK, OK, OK],
  ];
  for (const [policy, props, expGood, expWrong, expUntrusted] of matrix) {
    const ctx = clientCtx(k, policy, props);
    const cases: [string, number, string][] = [
      ['peer.test', good.port, expGood],
      ['wrong.test', good.port, expWrong],
      ['peer.test', untrusted.port, expUntrusted],
    ];
    for (const [host, port, expected] of cases) {
      const before = notes.length;
      const r = await dialAndRead(opts({ host, port, tls: true, tlsClient: ctx }));
      const label = `${policy}/${props} ${host}:${port === good.port ? 'good' : 'untrusted'}`;
      if (expected === OK || expected === NOTE) assert.equal(r, OK, label);
      else {
        assert.ok(isFailure(r), label);
        assert.equal(r.type, expected, label);
        assert.equal(r.status, 502, label);
        assert.equal(r.reason, 'TLS Certificate Error', label);
      }
      const noted = notes.slice(before).some((l) => l.includes('NOTE') && l.includes('verification failed'));
      assert.equal(noted, expected === NOTE, `${label}: only PERMISSIVE notes a failure`);
    }
  }
  assert.deepEqual(new Set(good.sni), new Set(['peer.test', 'wrong.test']));
});

test('TLS to an IP literal: no SNI, the IP SAN is checked', { timeout: 10_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const good = await tlsServer(t, k.server);
  assert.equal(await dialAndRead(opts({ host: '127.0.0.1', port: good.port, tls: true, tlsClient: clientCtx(k, 'ENFORCED', 'ALL') })), 'secret');
  assert.deepEqual(good.sni, [false]);
  const other = await tlsServer(t, k.other);
  const f = await dialAndRead(opts({ host: '127.0.0.1', port: other.port, tls: true, tlsClient: clientCtx(k, 'ENFORCED', 'ALL') }));
  assert.ok(isFailure(f) && f.type === 'tls_certificate_error');
});

test('servername overrides the SNI and the verified name', { timeout: 10_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const good = await tlsServer(t, k.server);
  const r = await dialAndRead(opts({ host: '127.0.0.1', servername: 'x.wild.test', port: good.port, tls: true, tlsClient: clientCtx(k, 'ENFORCED', 'ALL') }));
  assert.equal(r, 'secret');
  assert.deepEqual(good.sni, ['x.wild.test']);
});

test('the default client context uses the system roots: a private CA fails', { timeout: 10_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const good = await tlsServer(t, pki.server);
  const f = await dialAndRead(opts({ host: 'peer.test', port: good.port, tls: true }));
  assert.ok(isFailure(f));
  assert.equal(f.type, 'tls_certificate_error');
});

test('an expired server certificate is a tls_certificate_error', { timeout: 10_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const srv = await tlsServer(t, pki.expired);
  const f = await dialAndRead(opts({ host: 'peer.test', port: srv.port, tls: true, tlsClient: clientCtx(pki, 'ENFORCED', 'ALL') }));
  assert.ok(isFailure(f));
  assert.equal(f.type, 'tls_certificate_error');
  assert.match(f.detail ?? '', /CERT_HAS_EXPIRED|certificate has expired/);
});

test('an error right after the handshake reaches an error listener attached later', { timeout: 10_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const srv = await tlsServer(t, k.server, { ca: k.caPem });
  const d = await dial(opts({ host: 'peer.test', port: srv.port, tls: true, tlsClient: clientCtx(k, 'ENFORCED', 'ALL') }));
  await new Promise((r) => d.socket.once('close', r));
  const [err] = (await Promise.race([once(d.socket, 'error'), new Promise((r) => setTimeout(() => r([null]), 1000))])) as [NodeJS.ErrnoException | null];
  assert.equal(err?.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
});

test('a server that requires a client certificate: with ours, without, with an untrusted one', { timeout: 20_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const srv = await tlsServer(t, k.server, { ca: k.caPem });
  const withCert = await dialAndRead(opts({ host: 'peer.test', port: srv.port, tls: true, tlsClient: clientCtx(k, 'ENFORCED', 'ALL', k.client) }));
  assert.equal(withCert, 'secret');
  assert.deepEqual(srv.authorized, [true]);

  const without = await dialAndRead(opts({ host: 'peer.test', port: srv.port, tls: true, tlsClient: clientCtx(k, 'ENFORCED', 'ALL') }));
  assert.ok(isFailure(without), String(without));
  assert.equal(without.type, 'tls_alert_received');
  assert.equal(without.status, 502);
  assert.equal(without.reason, 'TLS Alert Received');
  assert.match(without.detail ?? '', /^(certificate required \(116\)|handshake failure \(40\))$/);

  // A Node server closes without an alert after rejecting a certificate it could not verify (an
  // OpenSSL-verified server, e.g. ATS, sends unknown_ca): either way nothing is relayed.
  const wrongCa = await dialAndRead(opts({ host: 'peer.test', port: srv.port, tls: true, tlsClient: clientCtx(k, 'ENFORCED', 'ALL', k.untrustedClient) }));
  if (isFailure(wrongCa)) assert.ok(wrongCa.type === 'tls_alert_received' || wrongCa.type === 'connection_terminated', wrongCa.type);
  else assert.equal(wrongCa, '');
  assert.deepEqual(srv.authorized, [true]);
});

// ---------------------------------------------------------------- session resumption

test('outbound sessions resume per origin and client context, and a resumed dial still checks nothing less', { timeout: 20_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const srv = await tlsServer(t, k.server, { ca: k.caPem });
  const withCache = (): ClientTlsContext => buildClientTlsContext({ ...SSL_BASE, clientCa: k.ca, clientCert: k.client.cert, clientKey: k.client.key, originSessionCacheSize: 16 });
  const reused = async (ctx: ClientTlsContext, host = 'peer.test'): Promise<boolean> => {
    const d = await dial(opts({ host, port: srv.port, tls: true, tlsClient: ctx, awaitClientCertVerdict: true }));
    const r = (d.socket as tls.TLSSocket).isSessionReused();
    assert.equal(await readAll(d.socket as net.Socket), 'secret');
    return r;
  };
  const ctx = withCache();
  assert.equal(await reused(ctx), false, 'first connection: full handshake');
  assert.equal(await reused(ctx), true, 'second: resumed');
  assert.equal(await reused(ctx), true, 'the ticket is reused while no newer one comes');
  assert.equal(await reused(ctx, '127.0.0.1'), false, 'another origin name: its own session');
  assert.equal(await reused(withCache()), false, 'a new client context (a new config generation) never resumes an old session');
  const off = buildClientTlsContext({ ...SSL_BASE, clientCa: k.ca, clientCert: k.client.cert, clientKey: k.client.key });
  assert.equal(off.sessions, null);
  assert.equal(await reused(off), false);
  assert.equal(await reused(off), false, 'origin_session_cache off: never resumed');
  assert.ok(srv.authorized.every((a) => a), 'every connection, resumed or not, carried an accepted client certificate');
});

test('only a verified origin leaves a ticket: a TLS 1.2 ticket sent before a failed name check is dropped', { timeout: 20_000 }, async (t) => {
  if (pki === null) return t.skip('openssl CLI not found: cannot make test certificates');
  const k = pki;
  const server = tls.createServer({ cert: k.server.certPem, key: k.server.keyPem, maxVersion: 'TLSv1.2' }, (s) => {
    s.on('error', () => {});
    s.end('secret');
  });
  const port = await listen(server);
  t.after(() => server.close());
  // Policy ENFORCED with properties NAME: the name is checked after the handshake, where a TLS 1.2
  // server has already sent its ticket.
  const ctx = buildClientTlsContext({ ...SSL_BASE, clientCa: k.ca, verifyServerProperties: 'NAME', originSessionCacheSize: 16 });
  const bad = await dialAndRead(opts({ host: 'wrong.test', port, tls: true, tlsClient: ctx }));
  assert.ok(isFailure(bad) && bad.type === 'tls_certificate_error', String(bad));
  assert.equal(ctx.sessions?.get(TlsSessionCache.key('wrong.test', '127.0.0.1', port)), undefined);
  assert.equal(await dialAndRead(opts({ host: 'peer.test', port, tls: true, tlsClient: ctx })), 'secret');
  assert.ok(ctx.sessions?.get(TlsSessionCache.key('peer.test', '127.0.0.1', port)), 'a verified origin leaves its ticket');
});
