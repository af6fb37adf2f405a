/**
 * Worker processes (proxy.config.exec_thread.*) on the real CLI: the primary forks the workers,
 * prints one listening line, replaces a worker that dies, shares TLS ticket keys so clients resume
 * whichever worker they reach, fails the start when the workers cannot listen, and stops them all
 * on SIGTERM.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import tls from 'node:tls';
import { makeConfigDir } from '../helpers/config-dir.js';
import { makePki } from '../helpers/pki.js';
import { startTsproxy, type Proxy } from '../helpers/proc.js';
import { echoServer } from '../helpers/servers.js';
import { has } from '../helpers/tools.js';
import { Conn, waitUntil } from '../host/harness.js';

const T = { timeout: 30_000 };
const NO_OPENSSL = has('openssl') ? false : 'openssl not installed: the test PKI is made with it';

/** `limit` workers, whatever the machine's CPU count. */
const WORKERS = (limit: number): Record<string, string> => ({
  PROXY_CONFIG_EXEC_THREAD_AUTOCONFIG_ENABLED: '0',
  PROXY_CONFIG_EXEC_THREAD_LIMIT: String(limit),
});

/** Live child processes of `pid`, from /proc. */
function children(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function startWithWorkers(t: TestContext, limit: number, records: Record<string, unknown> = {}, files: { sslMulticert?: string } = {}): Promise<Proxy> {
  const dir = await makeConfigDir({ records: { 'http.server_ports': '0:ip-in=127.0.0.1', 'http.connect_ports': '1-65535', 'url_remap.remap_required': 0, ...records }, ...files });
  t.after(() => dir.cleanup());
  const proxy = await startTsproxy(dir.dir, { env: WORKERS(limit) });
  t.after(() => proxy.stop());
  return proxy;
}

/** A CONNECT to the echo server through the proxy works end to end. */
async function tunnels(port: number, echoPort: number): Promise<void> {
  const c = await Conn.open(port);
  c.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
  const r = await c.response({ connect: true });
  assert.equal(r.status, 200, r.statusLine);
  c.write('ping');
  assert.equal((await c.bytes(4)).toString(), 'ping');
  c.close();
}

test('limit 2: two workers under one primary, one listening line, CONNECTs served', T, async (t) => {
  const echo = await echoServer();
  t.after(() => echo.close());
  const proxy = await startWithWorkers(t, 2);
  await waitUntil(() => children(proxy.pid).length === 2, 5000, 'two workers');
  assert.equal(proxy.stderrLines().filter((l) => /NOTE: listening on /.test(l)).length, 1, proxy.output());
  for (let i = 0; i < 10; i++) await tunnels(proxy.port('http'), echo.port);
});

test('a worker that dies is replaced and the others serve meanwhile', T, async (t) => {
  const echo = await echoServer();
  t.after(() => echo.close());
  const proxy = await startWithWorkers(t, 2);
  await waitUntil(() => children(proxy.pid).length === 2, 5000, 'two workers');
  const [victim, survivor] = children(proxy.pid);
  assert.ok(victim !== undefined && survivor !== undefined);
  process.kill(victim, 'SIGKILL');
  await proxy.waitForLine(new RegExp(`ERROR: worker \\(pid ${victim}\\) died \\(signal SIGKILL\\): starting another`), 5000);
  await tunnels(proxy.port('http'), echo.port);
  await waitUntil(() => {
    const now = children(proxy.pid);
    return now.length === 2 && !now.includes(victim) && now.includes(survivor);
  }, 10_000, 'a replacement worker');
  for (let i = 0; i < 5; i++) await tunnels(proxy.port('http'), echo.port);
});

test('SIGTERM stops every worker, then the primary exits 0', T, async (t) => {
  const proxy = await startWithWorkers(t, 2);
  await waitUntil(() => children(proxy.pid).length === 2, 5000, 'two workers');
  const workers = children(proxy.pid);
  const status = await proxy.stop('SIGTERM', 10_000);
  assert.deepEqual(status, { code: 0, signal: null }, proxy.output());
  for (const w of workers) assert.throws(() => process.kill(w, 0), /ESRCH/, `worker ${w} still running`);
});

test('workers that cannot listen fail the start: exit 1, no listening line', T, async (t) => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.after(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const dir = await makeConfigDir({ records: { 'http.server_ports': `${port}:ip-in=127.0.0.1` } });
  t.after(() => dir.cleanup());
  await assert.rejects(startTsproxy(dir.dir, { env: WORKERS(2), timeoutMs: 10_000 }), (err: Error) => {
    assert.match(err.message, /cannot listen/);
    assert.match(err.message, /failed before it listened/);
    return true;
  });
});

test('TLS sessions resume across workers: every worker has the same ticket keys', { ...T, skip: NO_OPENSSL }, async (t) => {
  const pki = await makePki();
  const pair = await pki.server('localhost');
  const proxy = await startWithWorkers(t, 2, { 'http.server_ports': '0:ssl:ip-in=127.0.0.1', 'ssl.server.cert.path': '/' }, {
    sslMulticert: `dest_ip=* ssl_cert_name=${pair.cert} ssl_key_name=${pair.key}\n`,
  });
  await waitUntil(() => children(proxy.pid).length === 2, 5000, 'two workers');
  const ca = readFileSync(pki.ca);
  let session: Buffer | undefined;
  const handshake = (): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: proxy.port('ssl'), servername: 'localhost', ca, ...(session ? { session } : {}) });
      s.on('session', (x: Buffer) => (session ??= x));
      s.on('error', reject);
      // Read the ticket (it follows the handshake in TLS 1.3), then leave.
      s.once('secureConnect', () => {
        const reused = s.isSessionReused();
        const done = (): void => {
          s.destroy();
          resolve(reused);
        };
        if (session !== undefined) done();
        else s.once('session', done);
      });
    });
  assert.equal(await handshake(), false);
  const resumed: boolean[] = [];
  for (let i = 0; i < 20; i++) resumed.push(await handshake());
  assert.ok(resumed.every((r) => r), `resumed: ${resumed.join(' ')}`);
});
