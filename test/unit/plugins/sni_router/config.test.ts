import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { PluginDiagnostic } from '../../../../host/api/index.js';
import { loadSniYaml, parseSniYaml } from '../../../../plugins/sni_router/config.js';
import plugin, { parseArgs } from '../../../../plugins/sni_router/index.js';

const FILE = '/etc/tsproxy/sni.yaml';
const DIR = '/etc/tsproxy';

const parse = (text: string, dir = DIR) => parseSniYaml(text, FILE, dir);
const fmt = (d: PluginDiagnostic): string => `${d.file}:${d.line}:${d.col}: ${d.severity ?? 'error'}: ${d.message}`;
const errors = (ds: readonly PluginDiagnostic[]) => ds.filter((d) => d.severity !== 'warning').map(fmt);
const warnings = (ds: readonly PluginDiagnostic[]) => ds.filter((d) => d.severity === 'warning').map(fmt);

function tmpDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sni-cfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('sni.yaml: valid files', () => {
  test('every routing key', () => {
    const { table, diagnostics } = parse(`sni:
  - fqdn: Foo.COM.
    tunnel_route: localhost:4443
  - fqdn: '*.match.com'
    tunnel_route: $1.testmatch:{inbound_local_port}
  - fqdn: ''
    tunnel_route: bar.test
  - fqdn: fwd.test
    forward_route: 127.0.0.1:8080
  - fqdn: pb.test
    partial_blind_route: '[::1]:9443'
    tunnel_alpn: [h2, http/1.1]
  - fqdn: ports.test
    inbound_port_ranges: [443, '8080-8086']
    verify_client: none
  - fqdn: '*'
    ip_allow: '127.0.0.1, 10.0.0.0/8,192.168.1.1-192.168.1.9, ::1'
    inbound_port_ranges: 4443
`);
    assert.deepEqual(diagnostics, []);
    const r = table.rules;
    assert.equal(r.length, 7);
    assert.deepEqual([r[0]!.fqdn, r[0]!.glob, r[0]!.route, r[0]!.line], ['foo.com', null, { kind: 'tunnel', host: 'localhost', port: 4443 }, 2]);
    assert.ok(r[1]!.glob?.test('a.b.match.com'));
    assert.equal(r[1]!.glob?.test('match.com'), false);
    assert.deepEqual(r[1]!.route, { kind: 'tunnel', host: '$1.testmatch', port: null });
    assert.deepEqual([r[2]!.fqdn, r[2]!.route], ['', { kind: 'tunnel', host: 'bar.test', port: null }]);
    assert.deepEqual(r[3]!.route, { kind: 'forward', host: '127.0.0.1', port: 8080 });
    assert.deepEqual([r[4]!.route, r[4]!.alpn], [{ kind: 'partial_blind', host: '::1', port: 9443 }, ['h2', 'http/1.1']]);
    assert.deepEqual([r[5]!.ports, r[5]!.verifyClient, r[5]!.route], [[[443, 443], [8080, 8086]], 'NONE', null]);
    assert.ok(r[6]!.glob?.test(''));
    assert.deepEqual(r[6]!.ports, [[4443, 4443]]);
    assert.equal(r[6]!.ipAllow?.check('10.1.2.3'), true);
    assert.equal(r[6]!.ipAllow?.check('192.168.1.5'), true);
    assert.equal(r[6]!.ipAllow?.check('192.168.1.10'), false);
    assert.equal(r[6]!.ipAllow?.check('::1', 'ipv6'), true);
  });

  test('an empty file and an empty list load with nothing to route', () => {
    assert.deepEqual(parse('sni: []\n'), { table: { file: FILE, rules: [] }, diagnostics: [] });
    const empty = parse('');
    assert.equal(empty.table.rules.length, 0);
    assert.deepEqual(errors(empty.diagnostics), []);
    assert.match(warnings(empty.diagnostics)[0]!, /no 'sni:' list/);
  });

  test('ip_allow from @file, relative to the config dir, comma- or line-separated with comments', (t) => {
    const dir = tmpDir(t);
    writeFileSync(join(dir, 'allow.txt'), '# office\n10.0.0.0/8, 127.0.0.1\n\n::1 # loopback\n');
    const { table, diagnostics } = parse("sni:\n  - fqdn: a.test\n    ip_allow: '@allow.txt'\n", dir);
    assert.deepEqual(diagnostics, []);
    assert.equal(table.rules[0]!.ipAllow?.check('127.0.0.1'), true);
    assert.equal(table.rules[0]!.ipAllow?.check('::1', 'ipv6'), true);
    assert.equal(table.rules[0]!.ipAllow?.check('11.0.0.1'), false);
  });
});

describe('sni.yaml: warnings', () => {
  test('unknown keys and ATS keys sni_router does not support are warnings with their position', () => {
    const { table, diagnostics } = parse(`sni:
  - fqdn: a.test
    verify_server_policy: DISABLED
    http2: off
    tunnel_prewarm: true
    colour: blue
    tunnel_route: b.test:443
other: 1
`);
    assert.equal(table.rules.length, 1);
    assert.deepEqual(errors(diagnostics), []);
    assert.deepEqual(warnings(diagnostics), [
      `${FILE}:8:1: warning: unknown key 'other' ignored (the root holds 'sni:')`,
      `${FILE}:3:5: warning: sni[0].verify_server_policy: not supported by sni_router (ignored)`,
      `${FILE}:4:5: warning: sni[0].http2: not supported by sni_router (ignored)`,
      `${FILE}:5:5: warning: sni[0].tunnel_prewarm: not supported by sni_router (ignored)`,
      `${FILE}:6:5: warning: sni[0]: unknown key 'colour' ignored`,
    ]);
  });

  test('tunnel_alpn without partial_blind_route, verify_client on a tunnel', () => {
    const { diagnostics } = parse('sni:\n  - fqdn: a.test\n    tunnel_route: b.test:1\n    tunnel_alpn: h2\n    verify_client: STRICT\n');
    assert.deepEqual(errors(diagnostics), []);
    assert.deepEqual(warnings(diagnostics), [
      `${FILE}:4:5: warning: sni[0].tunnel_alpn: only applies with partial_blind_route (ignored)`,
      `${FILE}:5:5: warning: sni[0].verify_client: no effect on a tunnel_route (TLS is not terminated)`,
    ]);
  });
});

describe('sni.yaml: errors (file:line:col, naming the key, all collected)', () => {
  test('an item without fqdn', () => {
    const { diagnostics } = parse('sni:\n  - tunnel_route: a.test:443\n  - fqdn: ok.test\n');
    assert.deepEqual(errors(diagnostics), [`${FILE}:2:5: error: sni[0]: 'fqdn' is required`]);
  });

  test('every bad value in one file is reported', () => {
    const { diagnostics } = parse(`sni:
  - fqdn: 'a.*.com'
  - fqdn: '*x.com'
  - fqdn: exact.test
    tunnel_route: $1.other:443
  - fqdn: '*.g.test'
    tunnel_route: $2.other:443
  - fqdn: p.test
    tunnel_route: p.other:70000
  - fqdn: q.test
    tunnel_route: q.other:{proxy_protocol_port}
  - fqdn: r.test
    tunnel_route: ::1:443
  - fqdn: s.test
    tunnel_route: s.other:443
    forward_route: s.other:80
  - fqdn: t.test
    inbound_port_ranges: [443, '10-5', abc]
  - fqdn: u.test
    verify_client: SOMETIMES
  - fqdn: v.test
    forward_route: v.other:80
    verify_client: STRICT
  - fqdn: w.test
    tunnel_route: 'bad host:443'
  - fqdn:
`);
    assert.deepEqual(errors(diagnostics), [
      `${FILE}:2:11: error: sni[0].fqdn: 'a.*.com': '*' is allowed only as the whole leftmost label ('*.example.com' or '*')`,
      `${FILE}:3:11: error: sni[1].fqdn: '*x.com': '*' is allowed only as the whole leftmost label ('*.example.com' or '*')`,
      `${FILE}:5:19: error: sni[2].tunnel_route: '$1' has no capture ('fqdn' has no '*')`,
      `${FILE}:7:19: error: sni[3].tunnel_route: '$2' has no capture ('fqdn' has one: $1)`,
      `${FILE}:9:19: error: sni[4].tunnel_route: port '70000' is not 1-65535 or {inbound_local_port}`,
      `${FILE}:11:19: error: sni[5].tunnel_route: {proxy_protocol_port} is not supported by sni_router (no PROXY protocol)`,
      `${FILE}:13:19: error: sni[6].tunnel_route: '::1:443': an IPv6 address needs brackets ([::1]:443)`,
      `${FILE}:16:5: error: sni[7].forward_route: only one of tunnel_route, forward_route, partial_blind_route per item`,
      `${FILE}:18:32: error: sni[8].inbound_port_ranges: '10-5' is not a port or a port range a-b within 1-65535`,
      `${FILE}:18:40: error: sni[8].inbound_port_ranges: 'abc' is not a port or a port range a-b within 1-65535`,
      `${FILE}:20:20: error: sni[9].verify_client: 'SOMETIMES' is not NONE, MODERATE or STRICT`,
      `${FILE}:23:5: error: sni[10].verify_client: STRICT is not supported by sni_router (this host cannot request client certificates per name; use proxy.config.ssl.client.certification_level)`,
      `${FILE}:25:19: error: sni[11].tunnel_route: 'bad host' is not a host name or IP address`,
      `${FILE}:26:10: error: sni[12].fqdn: must be a string (use '' for connections without SNI)`,
    ]);
  });

  test('ip_allow: a bad inline entry points at the entry; a bad @file line at that file', (t) => {
    const dir = tmpDir(t);
    writeFileSync(join(dir, 'allow.txt'), '10.0.0.0/8\n  1.2.3.4-1.2.3.1, nope\n');
    const { diagnostics } = parse(
      "sni:\n  - fqdn: a.test\n    ip_allow: 10.0.0.1,300.1.1.1,1.2.3.0/33\n  - fqdn: b.test\n    ip_allow: '@allow.txt'\n  - fqdn: c.test\n    ip_allow: '@missing.txt'\n",
      dir,
    );
    assert.deepEqual(errors(diagnostics), [
      `${FILE}:3:24: error: sni[0].ip_allow: '300.1.1.1' is not an address, a CIDR or a range a-b`,
      `${FILE}:3:34: error: sni[0].ip_allow: '1.2.3.0/33' is not an address, a CIDR or a range a-b`,
      `${join(dir, 'allow.txt')}:2:3: error: sni[1].ip_allow: '1.2.3.4-1.2.3.1' is not an address, a CIDR or a range a-b`,
      `${join(dir, 'allow.txt')}:2:20: error: sni[1].ip_allow: 'nope' is not an address, a CIDR or a range a-b`,
      `${FILE}:7:15: error: sni[2].ip_allow: cannot read '${join(dir, 'missing.txt')}': ENOENT`,
    ]);
  });

  test('YAML syntax errors and duplicate keys', () => {
    const dup = parse('sni:\n  - fqdn: a.test\n    fqdn: b.test\n');
    assert.deepEqual(errors(dup.diagnostics), [`${FILE}:3:5: error: YAML: Map keys must be unique`]);
    const bad = parse('sni:\n  - fqdn: [a\n');
    assert.equal(errors(bad.diagnostics).length > 0, true);
    assert.match(errors(bad.diagnostics)[0]!, /^\/etc\/tsproxy\/sni\.yaml:\d+:\d+: error: YAML: /);
  });

  test('the root must be a map; sni must be a list; items must be maps', () => {
    assert.deepEqual(errors(parse('- fqdn: a\n').diagnostics), [`${FILE}:1:1: error: the root must be a map with an 'sni:' list`]);
    assert.deepEqual(errors(parse('sni: a.test\n').diagnostics), [`${FILE}:1:6: error: 'sni' must be a list of items`]);
    assert.deepEqual(errors(parse('sni:\n  - a.test\n').diagnostics), [`${FILE}:2:5: error: sni[0]: an item must be a map with 'fqdn'`]);
  });

  test('an unreadable file', () => {
    const r = loadSniYaml('/nonexistent/sni.yaml', '/nonexistent');
    assert.deepEqual(errors(r.diagnostics), ['/nonexistent/sni.yaml:1:1: error: cannot read sni.yaml: ENOENT']);
  });
});

describe('sni_router arguments and verify()', () => {
  const ctx = { configDir: DIR, file: `${DIR}/plugin.config`, line: 3 };

  test('default file, --file relative and absolute, --file=', () => {
    assert.equal(parseArgs(ctx, ['sni_router.so']).file, `${DIR}/sni.yaml`);
    assert.equal(parseArgs(ctx, ['sni_router.so', '--file', 'routes/sni.yaml']).file, `${DIR}/routes/sni.yaml`);
    assert.equal(parseArgs(ctx, ['sni_router.so', '--file', '/x/y.yaml']).file, '/x/y.yaml');
    assert.equal(parseArgs(ctx, ['sni_router.so', '--file=z.yaml']).file, `${DIR}/z.yaml`);
  });

  test('bad arguments point at the plugin.config line', () => {
    assert.deepEqual(parseArgs(ctx, ['sni_router.so', '--bogus', '--file']).diagnostics.map(fmt), [
      `${DIR}/plugin.config:3:1: error: sni_router: unexpected argument '--bogus' (usage: sni_router.so [--file sni.yaml])`,
      `${DIR}/plugin.config:3:1: error: sni_router: --file needs a file name`,
    ]);
  });

  test('verify() reads the file and returns its diagnostics', (t) => {
    const dir = tmpDir(t);
    writeFileSync(join(dir, 'sni.yaml'), 'sni:\n  - tunnel_route: x.test:1\n');
    const ds = plugin.verify!({ configDir: dir, file: join(dir, 'plugin.config'), line: 1 }, ['sni_router.so']);
    assert.deepEqual(ds.map(fmt), [`${join(dir, 'sni.yaml')}:2:5: error: sni[0]: 'fqdn' is required`]);
  });
});
