/**
 * Interop: a tsproxy ingress running tls_bridge bridges through a REAL ATS peer (Debian's
 * trafficserver, run standalone from a sandbox by test/helpers/ats.ts, loopback only):
 *
 *   curl ─CONNECT─▶ tsproxy ingress (tls_bridge) ══TLS + client cert══▶ ATS (ssl, level 2) ─▶ service
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startAts } from '../helpers/ats.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import { curl } from '../helpers/curl.js';
import { makePki } from '../helpers/pki.js';
import { startTsproxy } from '../helpers/proc.js';
import { httpOrigin } from '../helpers/servers.js';
import { requireTool } from '../helpers/tools.js';

test('tls_bridge: a tsproxy ingress bridges through a real ATS peer', { timeout: 90_000 }, async (t) => {
  if (!requireTool(t, 'traffic_server', 'the peer is a real ATS (Debian trafficserver)')) return;
  if (!requireTool(t, 'openssl', 'the test PKI is made with it')) return;
  if (!requireTool(t, 'curl', 'the client is curl')) return;
  const pki = await makePki();
  const peerPair = await pki.server('peer.ats', ['127.0.0.1']);
  const ingressPair = await pki.client('ingress.test');
  const service = await httpOrigin((req, res) => res.end(`service saw ${req.method} ${req.url}\n`));
  t.after(() => service.close());
  // Allowed by the ingress, not by ATS's connect_ports.
  const other = await httpOrigin();
  t.after(() => other.close());

  const ats = await startAts({
    listen: ['ssl'],
    tls: { cert: peerPair.cert, key: peerPair.key, clientCa: pki.ca, certificationLevel: 2 },
    connectPorts: [service.port],
    debugTags: 'http_tunnel',
    t,
  });

  const ingress = await makeConfigDir({
    records: {
      'http.server_ports': '0',
      'http.connect_ports': `${service.port} ${other.port} ${ats.port}`,
      'url_remap.remap_required': 0,
      'ssl.client.verify.server.policy': 'ENFORCED',
      'ssl.client.CA.cert.filename': pki.ca,
      'ssl.client.cert.filename': ingressPair.cert,
      'ssl.client.private_key.filename': ingressPair.key,
    },
    hosts: '127.0.0.1 peer.ats\n',
    // The service is named by its address: Debian's ATS 9.2 sandbox went to (dead) DNS for a
    // name in its hosts file, so the peer is not asked to resolve anything here.
    pluginConfig: `tls_bridge.so 127[.]0[.]0[.]1 peer.ats:${ats.port}\n`,
  });
  t.after(() => ingress.cleanup());
  const proxy = await startTsproxy(ingress.dir, { tags: 'tls_bridge|http|ssl' });
  t.after(() => proxy.stop());
  const port = proxy.ports[0]!.port;

  await t.test('curl reaches the service through ATS', async () => {
    const r = await curl(['-p', '-x', `http://127.0.0.1:${port}`, `http://127.0.0.1:${service.port}/via-ats`], { maxTimeS: 10 });
    assert.equal(r.exitCode, 0, `${r.stderr}\n${proxy.stderrLines().join('\n')}\n${ats.logs().slice(-3000)}`);
    assert.match(r.body.toString(), /service saw GET \/via-ats/, `${r.stderr}\n${ats.logs()}`);
    await proxy.waitForLine(/\(tls_bridge\) Outbound ready/, 5000);
  });

  await t.test("a port the ATS peer refuses: ATS's 403 reaches the client through the ingress", async () => {
    const r = await curl(['-p', '-x', `http://127.0.0.1:${port}`, `http://127.0.0.1:${other.port}/`], { maxTimeS: 10 });
    assert.match(r.headerBlocks[0] ?? '', /^HTTP\/1\.1 403 /, `${r.stderr}\n${ats.logs()}`);
  });
});
