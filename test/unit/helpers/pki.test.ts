import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { makePki, type Pki } from '../../helpers/pki.js';
import { tlsOrigin } from '../../helpers/servers.js';
import { requireTool, run } from '../../helpers/tools.js';

async function verify(pki: Pki, purpose: string, cert: string, ca = pki.ca): Promise<{ ok: boolean; text: string }> {
  const r = await run('openssl', ['verify', '-purpose', purpose, '-CAfile', ca, cert], { timeoutMs: 5000 });
  return { ok: r.code === 0, text: r.stdout.toString() + r.stderr };
}

test('pki: openssl verify accepts the leaves for their purpose and refuses the rest', { timeout: 30_000 }, async (t) => {
  if (!requireTool(t, 'openssl', 'the PKI is made with it')) return;
  const pki = await makePki();
  const server = await pki.server('a.test', ['b.test', '127.0.0.1', '::1']);
  const client = await pki.client('client.test');
  assert.ok((await verify(pki, 'sslserver', server.cert)).ok);
  assert.ok((await verify(pki, 'sslclient', client.cert)).ok);
  assert.equal((await verify(pki, 'sslclient', server.cert)).ok, false, 'server cert has serverAuth only');
  assert.equal((await verify(pki, 'sslserver', client.cert)).ok, false, 'client cert has clientAuth only');
  assert.ok((await verify(pki, 'sslserver', pki.untrusted.server.cert, pki.untrusted.ca)).ok);
  assert.equal((await verify(pki, 'sslserver', pki.untrusted.server.cert)).ok, false);
  const expired = await verify(pki, 'sslserver', pki.expiredServer.cert);
  assert.equal(expired.ok, false);
  assert.match(expired.text, /expired/);
  const text = (await run('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', server.cert], { timeoutMs: 5000 })).stdout.toString();
  assert.match(text, /DNS:a\.test, DNS:b\.test, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
  assert.equal(readFileSync(server.combined, 'utf8'), readFileSync(server.cert, 'utf8') + readFileSync(server.key, 'utf8'));
});

test('pki: shared per process, certificates cached by name', { timeout: 30_000 }, async (t) => {
  if (!requireTool(t, 'openssl', 'the PKI is made with it')) return;
  const [a, b] = await Promise.all([makePki(), makePki()]);
  assert.equal(a, b);
  assert.equal(await a.server('x.test'), await a.server('x.test'));
  await a.cleanup();
  assert.ok(existsSync(a.ca), 'cleanup of the shared PKI is a no-op');
});

test('pki: a PKI in its own dir is removed by cleanup', { timeout: 30_000 }, async (t) => {
  if (!requireTool(t, 'openssl', 'the PKI is made with it')) return;
  const parent = mkdtempSync(join(tmpdir(), 'tsproxy-pki-test-'));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'pki');
  const pki = await makePki(dir);
  assert.ok(existsSync(pki.ca));
  await pki.cleanup();
  assert.equal(existsSync(dir), false);
});

test('pki: Node TLS accepts the server cert by IP SAN and refuses the expired one', { timeout: 30_000 }, async (t) => {
  if (!requireTool(t, 'openssl', 'the PKI is made with it')) return;
  const pki = await makePki();
  const handshake = async (pair: { cert: string; key: string }): Promise<string> => {
    const origin = await tlsOrigin(pair);
    t.after(() => origin.close());
    return new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port: origin.port, ca: readFileSync(pki.ca) });
      s.on('secureConnect', () => {
        s.destroy();
        resolve('ok');
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
  };
  assert.equal(await handshake(await pki.server('localhost', ['127.0.0.1'])), 'ok');
  assert.equal(await handshake(pki.expiredServer), 'CERT_HAS_EXPIRED');
  assert.equal(await handshake(pki.untrusted.server), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});
