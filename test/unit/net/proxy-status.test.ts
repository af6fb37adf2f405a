import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, ProxyError } from '../../../host/api/errors.js';
import { classify, failure, failureOf, isFailure, proxyStatusHeader, renderFailure, sfString } from '../../../host/net/proxy-status.js';
import type { Failure, Phase, ProxyErrorType } from '../../../host/net/proxy-status.js';
import { createVConnPair } from '../../../host/net/vconn-pair.js';

function nodeError(code: string, message = `boom ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

const CASES: readonly [code: string, phase: Phase, type: ProxyErrorType, status: number, reason: string][] = [
  ['ENOTFOUND', 'dns', 'dns_error', 502, 'Cannot Resolve Host'],
  ['EAI_AGAIN', 'dns', 'dns_error', 502, 'Cannot Resolve Host'],
  ['ECONNREFUSED', 'connect', 'connection_refused', 502, 'Connection Refused'],
  ['EHOSTUNREACH', 'connect', 'destination_ip_unroutable', 502, 'Destination Unreachable'],
  ['ENETUNREACH', 'connect', 'destination_ip_unroutable', 502, 'Destination Unreachable'],
  ['ETIMEDOUT', 'connect', 'connection_timeout', 504, 'Connect Timeout'],
  ['ECONNRESET', 'connect', 'connection_terminated', 502, 'Connection Terminated'],
  ['EPIPE', 'read', 'connection_terminated', 502, 'Connection Terminated'],
  ['ECONNRESET', 'tls', 'connection_terminated', 502, 'Connection Terminated'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls', 'tls_certificate_error', 502, 'TLS Certificate Error'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls', 'tls_certificate_error', 502, 'TLS Certificate Error'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'tls', 'tls_certificate_error', 502, 'TLS Certificate Error'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls', 'tls_certificate_error', 502, 'TLS Certificate Error'],
  ['CERT_HAS_EXPIRED', 'tls', 'tls_certificate_error', 502, 'TLS Certificate Error'],
  ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls', 'tls_protocol_error', 502, 'TLS Protocol Error'],
  ['EMFILE', 'connect', 'proxy_internal_error', 500, 'Internal Proxy Error'],
];

test('classify maps Node error codes once', { timeout: 5000 }, () => {
  for (const [code, phase, type, status, reason] of CASES) {
    const err = nodeError(code);
    const f = classify(err, phase);
    assert.equal(f.type, type, code);
    assert.equal(f.status, status, code);
    assert.equal(f.reason, reason, code);
    assert.equal(f.cause, err);
    assert.match(f.detail ?? '', new RegExp(code));
  }
});

test('classify: our timeouts depend on the phase', { timeout: 5000 }, () => {
  const t = new ProxyError(ErrorCode.NET_TIMEOUT, 'too slow');
  assert.deepEqual([classify(t, 'dns').type, classify(t, 'dns').status], ['dns_timeout', 504]);
  assert.equal(classify(t, 'connect').reason, 'Connect Timeout');
  assert.deepEqual([classify(t, 'tls').type, classify(t, 'tls').reason], ['connection_timeout', 'TLS Handshake Timeout']);
  assert.deepEqual([classify(t, 'read').type, classify(t, 'read').status], ['connection_read_timeout', 504]);
});

test('classify: TLS alerts from the peer name the alert', { timeout: 5000 }, () => {
  const alerts: [string, number, string][] = [
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 116, 'certificate_required'],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 42, 'bad_certificate'],
    ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 40, 'handshake_failure'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 48, 'unknown_ca'],
    ['ERR_SSL_TLSV1_UNRECOGNIZED_NAME', 112, 'unrecognized_name'],
  ];
  for (const [code, id, name] of alerts) {
    for (const phase of ['tls', 'read'] as const) {
      const f = classify(nodeError(code), phase);
      assert.equal(f.type, 'tls_alert_received', code);
      assert.equal(f.status, 502);
      assert.equal(f.reason, 'TLS Alert Received');
      assert.equal(f.detail, `${name.replace(/_/g, ' ')} (${id})`);
      assert.deepEqual(f.params, { 'alert-id': id, 'alert-message': name });
    }
  }
});

test('classify: fallbacks by phase; a Failure passes through; non-errors are handled', { timeout: 5000 }, () => {
  assert.equal(classify(nodeError('EWHATEVER'), 'dns').type, 'dns_error');
  assert.equal(classify(nodeError('EWHATEVER'), 'tls').type, 'tls_protocol_error');
  assert.equal(classify(nodeError('EWHATEVER'), 'read').type, 'connection_terminated');
  assert.equal(classify(nodeError('EWHATEVER'), 'connect').type, 'proxy_internal_error');
  assert.equal(classify('a string', 'connect').type, 'proxy_internal_error');
  assert.equal(classify(null, 'connect').detail, 'null');
  const f = failure('http_request_denied', 403, 'Tunnel Forbidden', 'port 25');
  assert.equal(classify(f, 'connect'), f);
  assert.ok(isFailure(f));
  assert.ok(!isFailure(new Error('x')));
  assert.ok(!isFailure({ type: 'nope', status: 1, reason: '' }));
});

test('failureOf uses the table; failure keeps what it is given', { timeout: 5000 }, () => {
  assert.deepEqual(failureOf('destination_ip_prohibited', 'x'), { type: 'destination_ip_prohibited', status: 403, reason: 'Access Denied', detail: 'x' });
  assert.deepEqual(failure('http_request_denied', 403, 'Tunnel Forbidden'), { type: 'http_request_denied', status: 403, reason: 'Tunnel Forbidden' });
});

test('proxyStatusHeader: RFC 9209 item with escaped details and params', { timeout: 5000 }, () => {
  assert.equal(proxyStatusHeader(failureOf('connection_refused')), 'tsproxy; error=connection_refused');
  assert.equal(
    proxyStatusHeader(failureOf('dns_error', 'say "hi" \\ bye\r\nX-Injected: 1')),
    'tsproxy; error=dns_error; details="say \\"hi\\" \\\\ bye??X-Injected: 1"',
  );
  const alert = classify(nodeError('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), 'read');
  assert.equal(proxyStatusHeader(alert, 'ingress.example'), 'ingress.example; error=tls_alert_received; details="certificate required (116)"; alert-id=116; alert-message="certificate_required"');
  assert.equal(proxyStatusHeader(failureOf('dns_error'), 'my proxy'), '"my proxy"; error=dns_error');
});

/** Parse an sf-string at the start of `s`: [value, rest]. */
function parseSfString(s: string): [string, string] {
  assert.equal(s[0], '"');
  let out = '';
  for (let i = 1; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\') {
      const n = s[++i] as string;
      assert.ok(n === '"' || n === '\\', `bad escape \\${n}`);
      out += n;
    } else if (c === '"') return [out, s.slice(i + 1)];
    else {
      assert.ok(c >= ' ' && c <= '~', `bad char ${JSON.stringify(c)}`);
      out += c;
    }
  }
  assert.fail('unterminated sf-string');
}

test('sfString round-trips any printable ASCII and never emits a control or non-ASCII byte (property)', { timeout: 20_000 }, () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      const [v, rest] = parseSfString(sfString(s));
      assert.equal(rest, '');
      assert.equal(v, s.replace(/[^\x20-\x7e]/g, '?'));
    }),
  );
});

/** Feed `bytes` to Node's HTTP client parser over a virtual connection. */
async function parseResponse(bytes: Buffer): Promise<{ res: http.IncomingMessage; body: Buffer }> {
  const [client, server] = createVConnPair();
  server.on('error', () => {});
  server.resume();
  const req = http.request({ method: 'GET', path: '/', host: 'x.test', createConnection: () => client });
  req.end();
  server.end(bytes);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const parts: Buffer[] = [];
  res.on('data', (c: Buffer) => parts.push(c));
  await once(res, 'end');
  return { res, body: Buffer.concat(parts) };
}

test('renderFailure: a complete reply Node parses, Content-Length exact', { timeout: 5000 }, async () => {
  const f = classify(nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9'), 'connect');
  const bytes = renderFailure(f);
  const { res, body } = await parseResponse(bytes);
  assert.equal(res.statusCode, 502);
  assert.equal(res.statusMessage, 'Connection Refused');
  assert.equal(res.headers['proxy-status'], 'tsproxy; error=connection_refused; details="connect ECONNREFUSED 127.0.0.1:9"');
  assert.equal(res.headers['content-type'], 'text/plain');
  assert.equal(res.headers['connection'], 'close');
  assert.equal(res.headers['server'], 'tsproxy');
  assert.ok(!Number.isNaN(Date.parse(res.headers['date'] ?? '')));
  assert.equal(Number(res.headers['content-length']), body.length);
  assert.equal(body.toString(), '502 Connection Refused\nconnection_refused: connect ECONNREFUSED 127.0.0.1:9\n');
});

test('renderFailure over a real socket: the client reads exactly Content-Length bytes', { timeout: 5000 }, async (t) => {
  const f = failure('http_request_denied', 403, 'Tunnel Forbidden', 'port 25 is not in proxy.config.http.connect_ports');
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(renderFailure(f)));
  });
  t.after(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const req = http.request({ method: 'GET', host: '127.0.0.1', port, path: '/', agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const parts: Buffer[] = [];
  res.on('data', (c: Buffer) => parts.push(c));
  await once(res, 'end');
  assert.equal(res.statusCode, 403);
  assert.equal(res.statusMessage, 'Tunnel Forbidden');
  assert.equal(Buffer.concat(parts).length, Number(res.headers['content-length']));
});

test('renderFailure parses for any detail and reason text (property)', { timeout: 60_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 120 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), async (detail, reason) => {
      const f: Failure = { type: 'tls_certificate_error', status: 502, reason, detail };
      const { res, body } = await parseResponse(renderFailure(f));
      assert.equal(res.statusCode, 502);
      assert.equal(Number(res.headers['content-length']), body.length);
      const ps = String(res.headers['proxy-status']);
      assert.ok(ps.startsWith('tsproxy; error=tls_certificate_error'));
      if (detail !== '') {
        const [v] = parseSfString(ps.slice(ps.indexOf('details=') + 'details='.length));
        assert.equal(v, detail.replace(/[^\x20-\x7e]/g, '?'));
      }
    }),
    { numRuns: 200 },
  );
});
