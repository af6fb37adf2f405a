/**
 * sni_router end to end: a real tsproxy process with an `ssl` port, real TLS backends with their
 * own certificates, and `curl` / `openssl s_client` / raw sockets as clients (security.md 27-35,
 * ats.md 4.4). Local PKI and process helpers stand in for test/helpers/{pki,proc}.ts.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTsproxy, type Proxy } from '../helpers/proc.js';
import { captureClientHello, ext, fragment, helloRecords, sniData } from '../unit/net/client-hello-fixtures.js';

const T = { timeout: 20_000 };

function has(tool: string, args: string[]): boolean {
  try {
    execFileSync(tool, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_OPENSSL = has('openssl', ['version']);
const HAVE_CURL = has('curl', ['--version']);
const SKIP = !HAVE_OPENSSL ? 'openssl not found (needed for certificates)' : false;

/** CA + server certificates (EC P-256) made with the openssl CLI. */
function makePki(dir: string, leaves: Record<string, string[]>): void {
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const key = (f: string): void => run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f);
  key('ca.key');
  run('req', '-x509', '-new', '-key', 'ca.key', '-days', '2', '-subj', '/CN=sni test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', 'ca.pem');
  for (const [name, sans] of Object.entries(leaves)) {
    key(`${name}.key`);
    run('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${sans[0]}`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }
}

/** An HTTPS backend answering `NAME backend`, behind a TCP front that records every byte each client sent. */
async function backend(dir: string, name: string): Promise<{ tlsPort: number; frontPort: number; received: Buffer[]; close(): void }> {
  const srv = https.createServer({ key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.pem`)) }, (req, res) => {
    res.end(`${name} backend ${req.headers.host ?? ''}\n`);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const tlsPort = (srv.address() as AddressInfo).port;
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const front = net.createServer((c) => {
    const i = received.push(Buffer.alloc(0)) - 1;
    const up = net.connect(tlsPort, '127.0.0.1');
    for (const s of [c, up]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    c.on('data', (d: Buffer) => void (received[i] = Buffer.concat([received[i]!, d])));
    c.pipe(up).pipe(c);
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  return {
    tlsPort,
    frontPort: (front.address() as AddressInfo).port,
    received,
    close() {
      for (const s of sockets) s.destroy();
      srv.closeAllConnections();
      srv.close();
      front.close();
    },
  };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function run(cmd: string, args: string[], input = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
    child.stdin?.on('error', () => {}); // curl may exit before reading its stdin
    child.stdin?.end(input);
  });
}

describe('sni_router through tsproxy', { skip: SKIP }, () => {
  let dir = '';
  let proxy: Proxy;
  let port = 0;
  let a: Awaited<ReturnType<typeof backend>>;
  let b: Awaited<ReturnType<typeof backend>>;
  let plain: http.Server;
  let plainHits = 0;

  const sniYaml = (fooTo: string): string => `sni:
  - fqdn: foo.test
    tunnel_route: ${fooTo}
  - fqdn: '*.match.test'
    tunnel_route: $1.testmatch:${b.frontPort}
  - fqdn: ''
    tunnel_route: a.backend:${a.frontPort}
  - fqdn: fwd.test
    forward_route: 127.0.0.1:${(plain.address() as AddressInfo).port}
  - fqdn: pb.test
    partial_blind_route: a.backend:${a.tlsPort}
    tunnel_alpn: [http/1.1]
  - fqdn: denied.test
    ip_allow: 10.0.0.0/8
    tunnel_route: a.backend:${a.frontPort}
`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sni-router-it-'));
    makePki(dir, {
      proxy: ['proxy.test', 'fwd.test', 'pb.test', 'other.test'],
      a: ['a.backend', 'foo.test', 'denied.test'],
      b: ['*.match.test', '*.testmatch'],
    });
    a = await backend(dir, 'a');
    b = await backend(dir, 'b');
    plain = http.createServer((req, res) => {
      plainHits++;
      res.end(`plain backend ${req.headers.host ?? ''}\n`);
    });
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    writeFileSync(join(dir, 'records.yaml'), `records:
  http:
    server_ports: 0:ssl
    connect_ports: 443
    cache:
      http: 0
  hostdb:
    host_file:
      path: hosts
  ssl:
    server:
      cert:
        path: .
      private_key:
        path: .
    client:
      CA:
        cert:
          path: .
          filename: ca.pem
    handshake_timeout_in: 2
`);
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 a.backend web.testmatch a.b.testmatch\n');
    writeFileSync(join(dir, 'ssl_multicert.config'), 'dest_ip=* ssl_cert_name=proxy.pem ssl_key_name=proxy.key\n');
    writeFileSync(join(dir, 'plugin.config'), 'sni_router.so\n');
    writeFileSync(join(dir, 'sni.yaml'), sniYaml(`a.backend:${a.frontPort}`));
    proxy = await startTsproxy(dir, { tags: 'sni_router|ssl_sni' });
    port = proxy.port('ssl');
  }, { timeout: 30_000 });

  after(async () => {
    await proxy?.stop();
    a?.close();
    b?.close();
    plain?.closeAllConnections();
    plain?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, { timeout: 10_000 });

  const curl = (name: string, ...extra: string[]) =>
    run('curl', ['-sS', '--max-time', '5', '--cacert', join(dir, 'ca.pem'), '--resolve', `${name}:${port}:127.0.0.1`, ...extra, `https://${name}:${port}/`]);
  const sClient = (...args: string[]) => run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], 'Q\n');

  test('exact name: a blind tunnel, TLS end to end with the backend certificate', { ...T, skip: !HAVE_CURL && 'curl not found' }, async () => {
    const r = await curl('foo.test');
    assert.equal(r.out, `a backend foo.test:${port}\n`);
    const s = await sClient('-servername', 'foo.test');
    assert.match(s.out, /subject=CN ?= ?a\.backend/);
    assert.match(proxy.output(), /\(ssl_sni\) Destination now is \[a\.backend:\d+\], fqdn \[foo\.test\]/);
    assert.match(proxy.output(), /\(sni_router\) vconn \d+ fqdn \[foo\.test\] .*tunnel to a\.backend/);
  });

  test('upper case and a trailing dot route like the name (security.md 31)', T, async () => {
    const s = await sClient('-servername', 'FOO.Test.');
    assert.match(s.out, /subject=CN ?= ?a\.backend/);
  });

  test('wildcard: $1 is the captured part, across dots', { ...T, skip: !HAVE_CURL && 'curl not found' }, async () => {
    assert.equal((await curl('web.match.test')).out, `b backend web.match.test:${port}\n`);
    // '*.match.test' on the backend's certificate covers one label only: -k for two.
    assert.equal((await curl('a.b.match.test', '-k')).out, `b backend a.b.match.test:${port}\n`);
    assert.match(proxy.output(), /Destination now is \[a\.b\.testmatch:\d+\], fqdn \[a\.b\.match\.test\]/);
  });

  test("no SNI: the fqdn '' route", T, async () => {
    const s = await sClient('-noservername');
    assert.match(s.out, /subject=CN ?= ?a\.backend/);
    assert.match(proxy.output(), /\(ssl_sni\) No servername provided/);
  });

  test('no match: tsproxy terminates TLS with ssl_multicert and answers 404 (no remap)', { ...T, skip: !HAVE_CURL && 'curl not found' }, async () => {
    const r = await curl('other.test', '-i');
    assert.match(r.out, /^HTTP\/1\.1 404 Not Found on Accelerator/m);
    assert.match((await sClient('-servername', 'unknown.test')).out, /subject=CN ?= ?proxy\.test/);
  });

  test('forward_route: TLS terminated here, plaintext to the target', { ...T, skip: !HAVE_CURL && 'curl not found' }, async () => {
    const before = plainHits;
    assert.equal((await curl('fwd.test')).out, `plain backend fwd.test:${port}\n`);
    assert.equal(plainHits, before + 1);
  });

  test('partial_blind_route: TLS terminated here, new TLS to the origin', { ...T, skip: !HAVE_CURL && 'curl not found' }, async () => {
    assert.equal((await curl('pb.test')).out, `a backend pb.test:${port}\n`);
  });

  test('ip_allow: a client outside the list is refused, nothing dialled', { ...T, skip: !HAVE_CURL && 'curl not found' }, async () => {
    const before = a.received.length;
    const r = await curl('denied.test');
    assert.notEqual(r.code, 0);
    assert.match(proxy.output(), /fqdn \[denied\.test\] .*reject \(client 127\.0\.0\.1 not in ip_allow\)/);
    assert.equal(a.received.length, before);
  });

  test('the backend receives the ClientHello byte for byte, whole and in 1-byte segments of 1-byte records', T, async () => {
    const hello = await captureClientHello({ servername: 'foo.test', alpn: ['h2'] });
    for (const bytes of [hello, fragment(hello, 1)]) {
      const n = a.received.length;
      const c = net.connect({ host: '127.0.0.1', port: port, noDelay: true });
      c.on('error', () => {});
      await once(c, 'connect');
      if (bytes === hello) c.write(bytes);
      else {
        for (let i = 0; i < bytes.length; i++) {
          await new Promise<void>((r) => c.write(bytes.subarray(i, i + 1), () => r()));
          await new Promise((r) => setImmediate(r)); // pace the writes so they leave as separate segments
        }
      }
      await until(() => a.received.length > n && a.received[n]!.length >= bytes.length, 'the backend to get the ClientHello');
      assert.deepEqual(a.received[n], bytes);
      c.destroy();
    }
  });

  for (const [what, bytes] of [
    ['oversized (20 KiB of padding)', () => helloRecords({ extensions: [ext(21, Buffer.alloc(20_000)), ext(0, sniData([0, 'foo.test']))] })],
    ['truncated then closed', async () => (await captureClientHello({ servername: 'foo.test' })).subarray(0, 60)],
    ['HTTP on the TLS port', () => Buffer.from('GET / HTTP/1.1\r\nHost: foo.test\r\n\r\n')],
    ['random bytes', () => Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7919) % 256))],
  ] as const) {
    test(`${what}: closed without a dial or a crash`, T, async () => {
      const before = a.received.length + b.received.length;
      const c = net.connect({ host: '127.0.0.1', port: port });
      c.on('error', () => {});
      await once(c, 'connect');
      c.end(await bytes());
      c.resume();
      await once(c, 'close');
      assert.equal(a.received.length + b.received.length, before, 'no backend dialled');
      assert.equal(await Promise.race([proxy.exited, Promise.resolve('running')]), 'running');
      assert.match((await sClient('-servername', 'foo.test')).out, /subject=CN ?= ?a\.backend/, 'still serving');
    });
  }

  test('reload: a changed sni.yaml applies to new connections; a broken one keeps the old table', { ...T, skip: !HAVE_CURL && 'curl not found' }, async () => {
    // The file is checked on a new connection at most once a second: connect until the change shows.
    const poll = async (done: () => Promise<boolean>, what: string): Promise<void> => {
      const deadline = Date.now() + 8000;
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    writeFileSync(join(dir, 'sni.yaml'), sniYaml(`web.testmatch:${b.frontPort}`));
    await poll(async () => (await curl('foo.test', '-k')).out === `b backend foo.test:${port}\n`, 'the new route');
    writeFileSync(join(dir, 'sni.yaml'), 'sni:\n  - tunnel_route: nowhere.test:1\n');
    const error = /ERROR: .*sni\.yaml:2:5: sni\[0\]: 'fqdn' is required/;
    await poll(async () => (await curl('foo.test', '-k'), error.test(proxy.output())), 'the reload error');
    assert.match(proxy.output(), /not reloaded: keeping the previous 6 rules/);
    assert.equal((await curl('foo.test', '-k')).out, `b backend foo.test:${port}\n`);
  });
});
