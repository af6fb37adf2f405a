import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectPortAllowed, parseConnectPorts, parseServerPorts } from '../../../host/config/ports.js';
import type { Diagnostic } from '../../../host/config/types.js';

const T = { timeout: 10_000 };

const AT = { file: 'records.yaml', line: 3, col: 19 };
const shown = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);
const brief = (text: string): unknown[] => parseServerPorts(text, AT).value.map((p) => [p.port, p.family, p.ssl, p.blind, p.ipIn, p.text]);

test('server_ports: ports, families, ssl, blind, ip-in; spaces and commas', T, () => {
  assert.deepEqual(brief('8080 8080:ipv6,8443:ssl  9000:BLIND:ipv4:ipv6'), [
    [8080, 4, false, false, null, '8080'],
    [8080, 6, false, false, null, '8080:ipv6'],
    [8443, 4, true, false, null, '8443:ssl'],
    [9000, 4, false, true, null, '9000:BLIND:ipv4:ipv6'],
    [9000, 6, false, true, null, '9000:BLIND:ipv4:ipv6'],
  ]);
});

test('server_ports: ip-in implies its family; = and - are optional; IPv6 in brackets', T, () => {
  assert.deepEqual(brief('ip-in=127.0.0.1:80 81:ip-in=[::1]:ssl 82:ip-in-[::1]:ipv6 83:IP-IN192.168.0.1'), [
    [80, 4, false, false, '127.0.0.1', 'ip-in=127.0.0.1:80'],
    [81, 6, true, false, '::1', '81:ip-in=[::1]:ssl'],
    [82, 6, false, false, '::1', '82:ip-in-[::1]:ipv6'],
    [83, 4, false, false, '192.168.0.1', '83:IP-IN192.168.0.1'],
  ]);
});

test('server_ports: port 0 (ephemeral) may repeat; an empty value has no ports', T, () => {
  assert.deepEqual(brief('0 0 0:ipv6'), [
    [0, 4, false, false, null, '0'],
    [0, 4, false, false, null, '0'],
    [0, 6, false, false, null, '0:ipv6'],
  ]);
  assert.deepEqual(parseServerPorts('  ', AT), { value: [], diagnostics: [] });
});

test('server_ports: ATS options tsproxy does not implement are warnings naming them', T, () => {
  const { value, diagnostics } = parseServerPorts('8080:tr-full:pp:proto=http2;http 8443:ssl:ip-out=[::1]:compressed', AT);
  assert.deepEqual(
    value.map((p) => p.port),
    [8080, 8443],
  );
  assert.deepEqual(shown(diagnostics), [
    "records.yaml:3:24: warning: option 'tr-full' in descriptor '8080:tr-full:pp:proto=http2;http' is not supported by tsproxy; ignored",
    "records.yaml:3:32: warning: option 'pp' in descriptor '8080:tr-full:pp:proto=http2;http' is not supported by tsproxy; ignored",
    "records.yaml:3:35: warning: option 'proto=http2;http' in descriptor '8080:tr-full:pp:proto=http2;http' is not supported by tsproxy; ignored",
    "records.yaml:3:61: warning: option 'ip-out=[::1]' in descriptor '8443:ssl:ip-out=[::1]:compressed' is not supported by tsproxy; ignored",
    "records.yaml:3:74: warning: option 'compressed' in descriptor '8443:ssl:ip-out=[::1]:compressed' is not supported by tsproxy; ignored",
  ]);
});

test('server_ports: every error, at the bad token', T, () => {
  const text = '80a 70000 ssl 8443:ssl:blind 81:bogus 82:ip-in=1.2.3 83:ip-in=[::1 84:85 86:ip-in=::1:ipv4 87,87';
  const { value, diagnostics } = parseServerPorts(text, AT);
  assert.deepEqual(shown(diagnostics), [
    "records.yaml:3:19: error: invalid port '80a' in descriptor '80a'",
    "records.yaml:3:23: error: port 70000 is out of range 0..65535 in descriptor '70000'",
    "records.yaml:3:29: error: no port in descriptor 'ssl'",
    "records.yaml:3:33: error: 'ssl' and 'blind' cannot be combined in descriptor '8443:ssl:blind'",
    "records.yaml:3:51: error: unknown option 'bogus' in descriptor '81:bogus'",
    "records.yaml:3:60: error: invalid address '1.2.3' in 'ip-in=1.2.3' in descriptor '82:ip-in=1.2.3'",
    "records.yaml:3:81: error: unclosed '[' in descriptor '83:ip-in=[::1'",
    "records.yaml:3:89: error: second port '85' in descriptor '84:85'",
    "records.yaml:3:95: error: no address in 'ip-in=' (write an IPv6 address in brackets: ip-in=[::1]) in descriptor '86:ip-in=::1:ipv4'",
    "records.yaml:3:103: error: second port '1' in descriptor '86:ip-in=::1:ipv4'",
    'records.yaml:3:113: error: port 87 (ipv4) is listed twice',
  ]);
  assert.deepEqual(
    value.map((p) => p.text),
    ['87'],
  );
});

test('server_ports: an ip-in address of the other family than ipv4/ipv6 is an error', T, () => {
  assert.deepEqual(shown(parseServerPorts('80:ip-in=[::1]:ipv4 81:ipv6:ip-in=10.0.0.1', AT).diagnostics), [
    "records.yaml:3:19: error: address ::1 is not of the family given (ipv4) in descriptor '80:ip-in=[::1]:ipv4'",
    "records.yaml:3:39: error: address 10.0.0.1 is not of the family given (ipv6) in descriptor '81:ipv6:ip-in=10.0.0.1'",
  ]);
});

test('connect_ports: ports, ranges, *; spaces and commas', T, () => {
  assert.deepEqual(parseConnectPorts('443, 8000-8100  1-1', AT), {
    value: {
      any: false,
      ranges: [
        [443, 443],
        [8000, 8100],
        [1, 1],
      ],
    },
    diagnostics: [],
  });
  assert.deepEqual(parseConnectPorts('*', AT).value, { any: true, ranges: [] });
  assert.deepEqual(parseConnectPorts('', AT).value, { any: false, ranges: [] });
});

test('connect_ports: every error, at the bad token', T, () => {
  assert.deepEqual(shown(parseConnectPorts('443 0 65536 100-90 a-b 80- 1-70000', AT).diagnostics), [
    "records.yaml:3:23: error: '0' is out of range 1..65535",
    "records.yaml:3:25: error: '65536' is out of range 1..65535",
    "records.yaml:3:31: error: range '100-90' is reversed",
    "records.yaml:3:38: error: invalid entry 'a-b' (expected a port, a range a-b, or *)",
    "records.yaml:3:42: error: invalid entry '80-' (expected a port, a range a-b, or *)",
    "records.yaml:3:46: error: '1-70000' is out of range 1..65535",
  ]);
});

test('connectPortAllowed', T, () => {
  const cp = parseConnectPorts('443 8000-8100', AT).value;
  assert.deepEqual(
    [443, 444, 7999, 8000, 8050, 8100, 8101].map((p) => connectPortAllowed(cp, p)),
    [true, false, false, true, true, true, false],
  );
  assert.equal(connectPortAllowed(parseConnectPorts('*', AT).value, 1), true);
  assert.equal(connectPortAllowed(parseConnectPorts('', AT).value, 443), false);
});
