import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diags } from '../../../host/diags.js';
import { defaultIpAllow, parseIpAllowYaml } from '../../../host/config/ip-allow.js';
import type { Diagnostic } from '../../../host/config/types.js';

function shown(ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);
}

const EXAMPLE = `# tsproxy ip_allow
ip_allow:
  - apply: in
    ip_addrs: [127.0.0.1, "::1"]
    action: set_allow
  - apply: in
    ip_addrs: 10.0.0.0/8
    action: set_allow
    methods: [connect, Get]
  - apply: in
    ip_addrs:
      - 192.168.0.0/16
      - 172.16.0.1-172.16.0.9
    action: set_deny
    methods: DELETE
  - apply: in
    ip_addrs: 203.0.113.0/24
    action: deny
  - apply: in
    ip_addrs: 198.51.100.0/24
    action: allow
    methods: []
  - apply: out
    ip_addrs: [127.0.0.1, 10.1.0.0/16]
    action: set_allow
    methods: CONNECT
  - apply: out
    ip_addrs: [0/0, ::/0]
    action: set_deny
    methods: [CONNECT]
`;

test('ip_allow.yaml: in rules, first match wins, methods', { timeout: 10_000 }, () => {
  const { value: acl, diagnostics } = parseIpAllowYaml(EXAMPLE, 'ip_allow.yaml');
  assert.deepEqual(diagnostics, []);
  assert.equal(acl.fromFile, true);
  assert.deepEqual(acl.acceptIn('127.0.0.1'), { allow: true, by: 'ip_allow.yaml:3' });
  assert.deepEqual(acl.checkIn('::1', 'PURGE'), { allow: true, by: 'ip_allow.yaml:3' });
  assert.deepEqual(acl.checkIn('::ffff:127.0.0.1', 'GET'), { allow: true, by: 'ip_allow.yaml:3' });
  // set_allow with methods: only those (case-insensitive); accepted at connect.
  assert.deepEqual(acl.acceptIn('10.2.3.4'), { allow: true, by: 'ip_allow.yaml:6' });
  assert.equal(acl.checkIn('10.2.3.4', 'CONNECT').allow, true);
  assert.equal(acl.checkIn('10.2.3.4', 'get').allow, true);
  assert.equal(acl.checkIn('10.2.3.4', 'POST').allow, false);
  // set_deny with methods: those denied, others allowed.
  assert.equal(acl.acceptIn('192.168.1.1').allow, true);
  assert.equal(acl.checkIn('192.168.1.1', 'delete').allow, false);
  assert.equal(acl.checkIn('172.16.0.5', 'CONNECT').allow, true);
  assert.deepEqual(acl.checkIn('172.16.0.5', 'DELETE'), { allow: false, by: 'ip_allow.yaml:10' });
  // A deny without methods, or an allow with an empty set, refuses at accept.
  assert.deepEqual(acl.acceptIn('203.0.113.7'), { allow: false, by: 'ip_allow.yaml:16' });
  assert.deepEqual(acl.acceptIn('198.51.100.7'), { allow: false, by: 'ip_allow.yaml:19' });
  assert.equal(acl.checkIn('198.51.100.7', 'GET').allow, false);
  // No matching in rule: denied.
  assert.deepEqual(acl.acceptIn('8.8.8.8'), { allow: false, by: 'default' });
  assert.deepEqual(acl.checkIn('2001:db8::1', 'GET'), { allow: false, by: 'default' });
  assert.deepEqual(acl.acceptIn('not an ip'), { allow: false, by: 'default' });
});

test('ip_allow.yaml: out rules; no match allows except link-local', { timeout: 10_000 }, () => {
  const { value: acl } = parseIpAllowYaml(EXAMPLE, 'ip_allow.yaml');
  assert.deepEqual(acl.checkOut('127.0.0.1', 'CONNECT'), { allow: true, by: 'ip_allow.yaml:23' });
  assert.deepEqual(acl.checkOut('10.1.2.3', 'GET'), { allow: false, by: 'ip_allow.yaml:23' });
  assert.deepEqual(acl.checkOut('10.2.0.1', 'CONNECT'), { allow: false, by: 'ip_allow.yaml:27' });
  assert.deepEqual(acl.checkOut('::ffff:10.2.0.1', 'CONNECT'), { allow: false, by: 'ip_allow.yaml:27' });
  assert.deepEqual(acl.checkOut('10.2.0.1', 'GET'), { allow: true, by: 'ip_allow.yaml:27' });

  const inOnly = parseIpAllowYaml('ip_allow:\n  - apply: in\n    ip_addrs: 0/0\n    action: allow\n', 'f').value;
  assert.deepEqual(inOnly.checkOut('93.184.216.34', 'CONNECT'), { allow: true, by: 'default' });
  assert.deepEqual(inOnly.checkOut('169.254.169.254', 'CONNECT'), { allow: false, by: 'default' });
  assert.deepEqual(inOnly.checkOut('fe80::1', 'CONNECT'), { allow: false, by: 'default' });
  const allowMeta = parseIpAllowYaml('ip_allow:\n  - apply: out\n    ip_addrs: 169.254.169.254\n    action: set_allow\n', 'f');
  assert.deepEqual(allowMeta.value.checkOut('169.254.169.254', 'CONNECT'), { allow: true, by: 'f:2' });
});

test('defaultIpAllow: loopback in, everyone else refused; outbound all but link-local', { timeout: 10_000 }, () => {
  const acl = defaultIpAllow();
  assert.equal(acl.fromFile, false);
  for (const ip of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) {
    assert.deepEqual(acl.acceptIn(ip), { allow: true, by: 'default' }, ip);
    assert.equal(acl.checkIn(ip, 'PURGE').allow, true, ip);
  }
  for (const ip of ['10.0.0.1', '192.168.1.1', '::2', '2001:db8::1']) {
    assert.deepEqual(acl.acceptIn(ip), { allow: false, by: 'default' }, ip);
    assert.equal(acl.checkIn(ip, 'GET').allow, false, ip);
  }
  for (const ip of ['127.0.0.1', '10.0.0.1', '::1', '93.184.216.34', '2001:db8::1']) {
    assert.deepEqual(acl.checkOut(ip, 'CONNECT'), { allow: true, by: 'default' }, ip);
  }
  for (const ip of ['169.254.169.254', '::ffff:169.254.169.254', 'fe80::1', 'febf::1']) {
    assert.deepEqual(acl.checkOut(ip, 'CONNECT'), { allow: false, by: 'default' }, ip);
  }
});

test('ip_allow.yaml: every problem reported at file:line:col, naming the key', { timeout: 10_000 }, () => {
  const text = `ip_allow:
  - apply: sideways
    ip_addrs: [10.0.0.0/33, 1.2.3.4, nope]
    action: set_maybe
    methods: [GET, "B@D"]
    colour: blue
  - ip_addrs: 1.2.3.4
  - apply: in
    ip_categories: INTERNAL
    action: allow
  - apply: out
    apply: in
    ip_addrs: []
    action: deny
  - just a string
`;
  const { diagnostics } = parseIpAllowYaml(text, 'ip_allow.yaml');
  assert.deepEqual(shown(diagnostics), [
    "ip_allow.yaml:2:12: error: invalid 'apply' value 'sideways' (expected in or out)",
    "ip_allow.yaml:3:16: error: ip_addrs: invalid prefix length '33' in '10.0.0.0/33' (0-32)",
    "ip_allow.yaml:3:38: error: ip_addrs: invalid address 'nope'",
    "ip_allow.yaml:4:13: error: invalid 'action' value 'set_maybe' (expected set_allow, set_deny, allow or deny)",
    "ip_allow.yaml:5:20: error: invalid method 'B@D' in 'methods'",
    "ip_allow.yaml:6:5: error: unknown key 'colour' (expected apply, ip_addrs, action, methods)",
    "ip_allow.yaml:7:5: error: missing 'apply' (in or out)",
    "ip_allow.yaml:7:5: error: missing 'action' (set_allow or set_deny)",
    "ip_allow.yaml:9:5: error: 'ip_categories' is not supported by tsproxy; list addresses in 'ip_addrs'",
    "ip_allow.yaml:12:5: error: duplicate key 'apply'",
    "ip_allow.yaml:13:15: error: 'ip_addrs' is empty",
    'ip_allow.yaml:15:5: error: each ip_allow rule must be a map (apply, ip_addrs, action, methods)',
  ]);
});

test('ip_allow.yaml: structure errors and edge input', { timeout: 10_000 }, () => {
  assert.deepEqual(shown(parseIpAllowYaml('ip_allow:\n  - apply: in\n    ip_addrs: [1.2.3.4\n', 'f').diagnostics), [
    'f:4:1: error: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ]);
  assert.deepEqual(shown(parseIpAllowYaml('- 1\n', 'f').diagnostics), ["f:1:1: error: the root must be a map with the key 'ip_allow'"]);
  assert.deepEqual(shown(parseIpAllowYaml('allow_ip: []\n', 'f').diagnostics), [
    "f:1:1: error: unknown key 'allow_ip' (expected ip_allow)",
  ]);
  assert.deepEqual(shown(parseIpAllowYaml('ip_allow:\n', 'f').diagnostics), ["f:1:1: error: 'ip_allow' must be a list of rules"]);
  assert.deepEqual(shown(parseIpAllowYaml('# nothing\n', 'f').diagnostics), ['f:1:1: warning: empty ip_allow.yaml: every client will be denied']);
  assert.deepEqual(shown(parseIpAllowYaml('ip_allow:\n  apply: out\n  ip_addrs: 10/8\n  action: deny\n', 'f').diagnostics), [
    "f:1:1: warning: no 'apply: in' rules: every client will be denied",
  ]);
  // A single rule map instead of a list, ALL among methods, upper-case keywords.
  const one = parseIpAllowYaml('ip_allow:\n  apply: IN\n  ip_addrs: ::/0\n  action: SET_ALLOW\n  methods: [ALL, GET]\n', 'f');
  assert.deepEqual(one.diagnostics, []);
  assert.equal(one.value.checkIn('2001:db8::1', 'PATCH').allow, true);
  assert.equal(one.value.acceptIn('1.2.3.4').allow, false, '::/0 does not cover IPv4');
});

test('ip_allow decisions are logged under the ip_allow debug tag', { timeout: 10_000 }, (t) => {
  const lines: string[] = [];
  const previous = diags.setSink((line) => lines.push(line));
  diags.configure(true, 'ip_allow');
  t.after(() => {
    diags.setSink(previous);
    diags.configure(false, '');
  });
  defaultIpAllow().checkOut('169.254.169.254', 'CONNECT');
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /DEBUG: \(ip_allow\) out 169\.254\.169\.254 CONNECT: deny by default$/);
});
