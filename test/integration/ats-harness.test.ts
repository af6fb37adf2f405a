/**
 * Proves the real-ATS peer used by the tls_bridge interop tests: an `ssl` port that requires a client
 * certificate (certification_level 2) and tunnels CONNECT to the ports in connect_ports.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { startAts } from '../helpers/ats.js';
import { loadPair, makePki } from '../helpers/pki.js';
import { echoServer } from '../helpers/servers.js';
import { requireTool } from '../helpers/tools.js';

const STEP_MS = 5000;

/** Resolves with everything read once `done(bytes)` holds; rejects on error, close, or after STEP_MS. */
function readUntil(s: TLSSocket, done: (b: Buffer) => boolean, already: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = already;
    const finish = (e: Error | null): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', finish);
      s.off('close', onClose);
      if (e) reject(e);
      else resolve(got);
    };
    const onData = (b: Buffer): void => {
      got = Buffer.concat([got, b]);
      if (done(got)) finish(null);
    };
    const onClose = (): void => finish(new Error(`closed after ${got.length} bytes: ${JSON.stringify(got.toString('latin1'))}`));
    const timer = setTimeout(() => finish(new Error(`timed out with ${JSON.stringify(got.toString('latin1'))}`)), STEP_MS);
    s.on('data', onData);
    s.on('error', finish);
    s.on('close', onClose);
    if (done(got)) finish(null);
  });
}

/** What a client without a certificate saw: the error (if any) and the bytes it got before the end. */
function outcome(s: TLSSocket): Promise<{ error: string | null; bytes: string }> {
  return new Promise((resolve) => {
    let bytes = '';
    let error: string | null = null;
    const timer = setTimeout(() => s.destroy(new Error('no outcome in time')), STEP_MS);
    s.on('data', (b: Buffer) => (bytes += b.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ error, bytes });
    });
  });
}

test('real ATS: ssl port with certification_level 2 tunnels CONNECT for a client with a certificate only', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'traffic_server', 'the ATS peer harness runs Debian trafficserver')) return;
  if (!requireTool(t, 'openssl', 'the test PKI is made with it')) return;
  const pki = await makePki();
  const serverPair = await pki.server('peer.test', ['localhost', '127.0.0.1']);
  const clientPair = await pki.client('client.test');
  const echo = await echoServer();
  t.after(() => echo.close());

  const started = Date.now();
  const ats = await startAts({
    listen: ['ssl'],
    tls: { cert: serverPair.cert, key: serverPair.key, clientCa: pki.ca, certificationLevel: 2 },
    connectPorts: [echo.port],
    hosts: '127.0.0.1 echo.test\n',
    t,
  });
  t.diagnostic(`ATS ready (port open, hosts file loaded) ${Date.now() - started} ms after spawn`);
  const ca = readFileSync(pki.ca);

  /** Opens TLS with the client certificate, sends CONNECT `target`, and returns the reply head and the rest. */
  const connectVia = async (target: string, st: TestContext): Promise<{ s: TLSSocket; head: string; rest: Buffer }> => {
    const s = connect({ host: '127.0.0.1', port: ats.port, servername: 'peer.test', ca, ...loadPair(clientPair) });
    st.after(() => s.destroy());
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    const got = await readUntil(s, (b) => b.includes('\r\n\r\n'));
    const end = got.indexOf('\r\n\r\n') + 4;
    return { s, head: got.subarray(0, end).toString('latin1'), rest: got.subarray(end) };
  };

  await t.test('with a client certificate: CONNECT gets 200 and the tunnel echoes', async (st) => {
    const { s, head, rest } = await connectVia(`127.0.0.1:${echo.port}`, st);
    assert.match(head, /^HTTP\/1\.1 200 /, ats.logs());
    const payload = Buffer.from('hello through a real ATS tunnel\n');
    s.write(payload);
    assert.deepEqual(await readUntil(s, (b) => b.length >= payload.length, rest), payload);
    s.end();
  });

  await t.test('names resolve through the hosts file; an unknown name gets 500 after the 2 s lookup timeout', async (st) => {
    const named = await connectVia(`echo.test:${echo.port}`, st);
    assert.match(named.head, /^HTTP\/1\.1 200 /, ats.logs());
    named.s.write('by name');
    assert.equal((await readUntil(named.s, (b) => b.length >= 7, named.rest)).toString(), 'by name');
    const asked = Date.now();
    const unknown = await connectVia(`unknown.test:${echo.port}`, st);
    assert.match(unknown.head, /^HTTP\/1\.1 500 Cannot find server/);
    t.diagnostic(`unknown name answered after ${Date.now() - asked} ms`);
  });

  await t.test('without a client certificate: the handshake is refused and no tunnel opens', async (st) => {
    const s = connect({ host: '127.0.0.1', port: ats.port, servername: 'peer.test', ca });
    st.after(() => s.destroy());
    const seen = outcome(s);
    s.on('secureConnect', () => s.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`));
    const { error, bytes } = await seen;
    assert.equal(bytes, '', 'no reply may arrive');
    assert.ok(error !== null, 'the TLS layer reports the refusal');
    assert.match(error, /ALERT|ECONNRESET|EPIPE/, error);
  });
});
