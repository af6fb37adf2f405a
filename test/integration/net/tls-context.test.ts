import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { ErrorCode, ProxyError } from '../../../host/api/errors.js';
import type { SslCertEntry } from '../../../host/config/types.js';
import { buildClientTlsContext, buildServerContexts, type ServerTlsOptions } from '../../../host/net/tls-context.js';
import { hasOpenssl, makePki, SSL_BASE, type Pki } from './certs.js';

let pki: Pki | null = null;
before(() => {
  if (hasOpenssl()) pki = makePki();
});
after(() => pki?.remove());

const NO_PKI = 'openssl CLI not found: cannot make test certificates';


function configError(fn: () => unknown): ProxyError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ProxyError, String(e));
    assert.equal(e.code, ErrorCode.CONFIG_INVALID);
    return e;
  }
  return assert.fail('no error thrown');
}

function entry(k: { cert: string; key: string }, line: number, destIp = '*'): SslCertEntry {
  return { destIp, certFile: k.cert, keyFile: k.key, file: '/etc/tsproxy/ssl_multicert.config', line };
}

/** A TLS server with these options; returns what a client sees for a given SNI. */
async function serve(t: { after: (fn: () => void) => void }, o: ServerTlsOptions, host = '127.0.0.1'): Promise<(sni: string | null, extra?: tls.ConnectionOptions) => Promise<{ cn: string; authorized: boolean } | Error>> {
  const seen: boolean[] = [];
  const server = tls.createServer({ ...o }, (s) => {
    seen.push(s.authorized);
    s.on('error', () => {});
    s.end(String(s.authorized));
  });
  server.on('tlsClientError', () => {});
  server.listen(0, host);
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  return (sni, extra = {}) =>
    new Promise((resolve) => {
      const c = tls.connect({ host, port, rejectUnauthorized: false, ...(sni === null ? {} : { servername: sni }), ...extra });
      let body = '';
      let cn = '';
      c.setEncoding('latin1');
      c.on('secureConnect', () => (cn = String(c.getPeerCertificate().subject.CN)));
      c.on('data', (d: string) => (body += d));
      c.on('error', (e) => resolve(e));
      c.on('close', () => resolve(body === '' ? new Error('closed without data') : { cn, authorized: body === 'true' }));
    });
}

// ---------------------------------------------------------------- client context

test('client context: CA from a file and from a directory of PEM files (other files skipped)', { timeout: 10_000 }, (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const dir = join(pki.dir, 'ca-dir');
  mkdirSync(dir);
  copyFileSync(pki.ca, join(dir, 'a.pem'));
  copyFileSync(pki.untrustedCa, join(dir, 'b.crt'));
  writeFileSync(join(dir, 'README'), 'not a certificate\n');
  for (const ca of [pki.ca, dir]) {
    const ctx = buildClientTlsContext({ ...SSL_BASE, clientCa: ca, verifyServerPolicy: 'PERMISSIVE', verifyServerProperties: 'NAME' });
    assert.ok(ctx.secureContext instanceof Object);
    assert.equal(ctx.policy, 'PERMISSIVE');
    assert.equal(ctx.properties, 'NAME');
  }
  assert.ok(buildClientTlsContext({ ...SSL_BASE, clientCa: pki.ca, clientCert: pki.client.cert, clientKey: pki.client.key }).secureContext);
});

test('client context errors name the record and the file, all of them', { timeout: 10_000 }, (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const empty = join(pki.dir, 'empty-ca-dir');
  mkdirSync(empty);
  writeFileSync(join(empty, 'notes.txt'), 'nothing here\n');
  let e = configError(() => buildClientTlsContext({ ...SSL_BASE, clientCa: empty }));
  assert.match(e.message, /^proxy\.config\.ssl\.client\.CA\.cert\.filename .*empty-ca-dir: no PEM certificate/);

  e = configError(() => buildClientTlsContext({ ...SSL_BASE, clientCa: '/nonexistent/ca.pem', clientCert: '/nonexistent/client.pem' }));
  const lines = e.message.split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /^proxy\.config\.ssl\.client\.CA\.cert\.filename \/nonexistent\/ca\.pem: .*ENOENT/);
  assert.match(lines[1] ?? '', /^proxy\.config\.ssl\.client\.cert\.filename \/nonexistent\/client\.pem: cannot read certificate/);

  e = configError(() => buildClientTlsContext({ ...SSL_BASE, clientCert: pki?.client.cert ?? '', clientKey: pki?.server.key ?? '' }));
  assert.match(e.message, /proxy\.config\.ssl\.client\.cert\.filename .* \/ proxy\.config\.ssl\.client\.private_key\.filename .*: .*(mismatch|key)/i);

  e = configError(() => buildClientTlsContext({ ...SSL_BASE, clientCert: pki?.expired.cert ?? '', clientKey: pki?.expired.key ?? '' }));
  assert.match(e.message, /client\.cert\.filename .*expired\.pem: certificate expired on /);

  e = configError(() => buildClientTlsContext({ ...SSL_BASE, clientKey: pki?.client.key ?? '' }));
  assert.match(e.message, /private_key\.filename .* set without proxy\.config\.ssl\.client\.cert\.filename/);
});

test('the client key defaults to the certificate file (one PEM with both)', { timeout: 10_000 }, (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const both = join(pki.dir, 'client-both.pem');
  writeFileSync(both, pki.client.certPem + pki.client.keyPem);
  assert.ok(buildClientTlsContext({ ...SSL_BASE, clientCert: both }).secureContext);
});

// ---------------------------------------------------------------- server contexts

test('SNI selects by certificate name: exact, then one-label wildcard, else the default', { timeout: 20_000 }, async (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const st = buildServerContexts([entry(pki.server, 1), entry(pki.other, 2, '*')], null, 0);
  assert.equal(st.requestCert, false);
  assert.equal(st.rejectUnauthorized, false);
  const hello = await serve(t, st.options());
  const cn = async (sni: string | null): Promise<string> => {
    const r = await hello(sni);
    assert.ok(!(r instanceof Error), String(r));
    return r.cn;
  };
  assert.equal(await cn('peer.test'), 'peer.test');
  assert.equal(await cn('other.test'), 'other.test');
  assert.equal(await cn('OTHER.TEST'), 'other.test');
  assert.equal(await cn('x.wild.test'), 'peer.test');
  // Not covered by *.wild.test: falls back to the first dest_ip=* line.
  assert.equal(await cn('a.b.wild.test'), 'peer.test');
  assert.equal(await cn(null), 'peer.test');
  assert.equal(st.select('other.test.', null), st.select('other.test', '10.0.0.1'));
  assert.equal(st.select('unknown.test', null), st.secureContext);
  assert.notEqual(st.select('other.test', null), st.secureContext);
});

test('dest_ip matches the local address when SNI does not decide; IPv4-mapped addresses too', { timeout: 20_000 }, async (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const st = buildServerContexts([entry(pki.server, 1, '*'), entry(pki.other, 2, '127.0.0.1')], null, 0);
  assert.equal(st.select(null, '127.0.0.1'), st.select(null, '::ffff:127.0.0.1'));
  assert.notEqual(st.select(null, '127.0.0.1'), st.secureContext);
  assert.equal(st.select(null, '::1'), st.secureContext);
  assert.equal(st.select('peer.test', '127.0.0.1'), st.select('peer.test', null));

  const onLoopback = await serve(t, st.options('127.0.0.1'));
  for (const [sni, want] of [[null, 'other.test'], ['nomatch.test', 'other.test'], ['peer.test', 'peer.test']] as const) {
    const r = await onLoopback(sni);
    assert.ok(!(r instanceof Error), String(r));
    assert.equal(r.cn, want, `SNI ${sni}`);
  }
  const elsewhere = await serve(t, st.options('::1'), '::1');
  const r = await elsewhere(null);
  assert.ok(!(r instanceof Error));
  assert.equal(r.cn, 'peer.test');
});

test('certification_level: 0 asks nothing, 1 asks and accepts none, 2 requires a trusted certificate', { timeout: 20_000 }, async (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const k = pki;
  const client = { cert: k.client.certPem, key: k.client.keyPem };
  const untrusted = { cert: k.untrustedClient.certPem, key: k.untrustedClient.keyPem };
  const caDir = join(k.dir, 'inbound-ca');
  mkdirSync(caDir);
  copyFileSync(k.ca, join(caDir, 'ca.pem'));

  const l1 = await serve(t, buildServerContexts([entry(k.server, 1)], k.ca, 1).options());
  assert.deepEqual(await l1('peer.test'), { cn: 'peer.test', authorized: false });
  assert.deepEqual(await l1('peer.test', client), { cn: 'peer.test', authorized: true });

  const st2 = buildServerContexts([entry(k.server, 1)], caDir, 2);
  assert.equal(st2.requestCert, true);
  assert.equal(st2.rejectUnauthorized, true);
  const l2 = await serve(t, st2.options());
  assert.deepEqual(await l2('peer.test', client), { cn: 'peer.test', authorized: true });
  assert.ok((await l2('peer.test')) instanceof Error, 'no certificate must be refused');
  assert.ok((await l2('peer.test', untrusted)) instanceof Error, 'an untrusted certificate must be refused');
  // Selected by SNI, the per-name context carries the inbound CA too.
  const st2b = buildServerContexts([entry(k.other, 1), entry(k.server, 2, '127.0.0.1')], caDir, 2);
  const l2b = await serve(t, st2b.options());
  assert.deepEqual(await l2b('peer.test', client), { cn: 'peer.test', authorized: true });
});

test('ssl_multicert problems are all reported as file:line', { timeout: 10_000 }, (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const k = pki;
  const e = configError(() =>
    buildServerContexts(
      [
        entry(k.server, 1),
        entry({ cert: '/nonexistent/a.pem', key: k.server.key }, 2),
        entry({ cert: k.other.cert, key: k.server.key }, 3),
        entry(k.expired, 4),
        entry(k.other, 5, 'not-an-ip'),
        entry({ cert: k.server.cert, key: '/nonexistent/a.key' }, 6),
      ],
      '/nonexistent/ca',
      2,
    ),
  );
  const lines = e.message.split('\n');
  assert.equal(lines.length, 6, e.message);
  assert.match(lines[0] ?? '', /^proxy\.config\.ssl\.CA\.cert\.filename \/nonexistent\/ca: .*ENOENT/);
  assert.match(lines[1] ?? '', /^\/etc\/tsproxy\/ssl_multicert\.config:2: ssl_cert_name \/nonexistent\/a\.pem: cannot read certificate/);
  assert.match(lines[2] ?? '', /^\/etc\/tsproxy\/ssl_multicert\.config:3: ssl_cert_name .*other\.pem \/ ssl_key_name .*server\.key: /);
  assert.match(lines[3] ?? '', /^\/etc\/tsproxy\/ssl_multicert\.config:4: ssl_cert_name .*expired\.pem: certificate expired on /);
  assert.match(lines[4] ?? '', /^\/etc\/tsproxy\/ssl_multicert\.config:5: dest_ip not-an-ip: not an IP address or \*/);
  assert.match(lines[5] ?? '', /^\/etc\/tsproxy\/ssl_multicert\.config:6: ssl_key_name \/nonexistent\/a\.key: cannot read private key/);
  assert.ok(!/PRIVATE KEY/.test(e.message), 'no key material in messages');
});

test('no dest_ip=* line: no default context; an unmatched handshake fails', { timeout: 10_000 }, async (t) => {
  if (pki === null) return t.skip(NO_PKI);
  const st = buildServerContexts([entry(pki.other, 1, '192.0.2.1')], null, 0);
  assert.equal(st.secureContext, null);
  assert.equal(st.select('nomatch.test', '127.0.0.1'), null);
  const hello = await serve(t, st.options('127.0.0.1'));
  assert.ok((await hello('nomatch.test')) instanceof Error);
  const ok = await hello('other.test');
  assert.ok(!(ok instanceof Error), String(ok));
  assert.equal(ok.cn, 'other.test');
});
