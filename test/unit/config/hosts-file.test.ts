import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostsFile } from '../../../host/config/hosts-file.js';
import type { Diagnostic } from '../../../host/config/types.js';

function shown(ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);
}

test('hosts file: addresses in file order, case-insensitive names, trailing dot ignored', { timeout: 10_000 }, () => {
  const text = [
    '# static names',
    '127.0.0.1   localhost  peer.ats',
    '::1\tlocalhost ip6-localhost   # v6 loopback',
    '10.0.0.2 Peer.ATS. other_name',
    '10.0.0.2 peer.ats',
    'fe80::1%lo0 scoped',
    '   ',
    '10.0.0.3 crlf\r',
  ].join('\n');
  const { value, diagnostics } = parseHostsFile(text, 'hosts');
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(value.lookup('localhost'), ['127.0.0.1', '::1']);
  assert.deepEqual(value.lookup('PEER.ats.'), ['127.0.0.1', '10.0.0.2']);
  assert.deepEqual(value.lookup('other_name'), ['10.0.0.2']);
  assert.deepEqual(value.lookup('scoped'), ['fe80::1%lo0']);
  assert.deepEqual(value.lookup('crlf'), ['10.0.0.3']);
  assert.deepEqual(value.lookup('unknown'), []);
  assert.deepEqual(value.lookup('#'), []);
});

test('hosts file: invalid address or name at file:line:col; the rest still loads', { timeout: 10_000 }, () => {
  const text = ['1.2.3.4 good', '  999.1.1.1 bad', 'example.com 1.2.3.4', '5.6.7.8 ok b@d ..', '9.9.9.9', '10.0.0.1 after'].join('\n');
  const { value, diagnostics } = parseHostsFile(text, '/etc/hosts');
  assert.deepEqual(shown(diagnostics), [
    "/etc/hosts:2:3: error: invalid address '999.1.1.1'",
    "/etc/hosts:3:1: error: invalid address 'example.com'",
    "/etc/hosts:4:12: error: invalid host name 'b@d'",
    "/etc/hosts:4:16: error: invalid host name '..'",
    "/etc/hosts:5:1: warning: address '9.9.9.9' has no host names; line ignored",
  ]);
  assert.deepEqual(value.lookup('good'), ['1.2.3.4']);
  assert.deepEqual(value.lookup('ok'), ['5.6.7.8']);
  assert.deepEqual(value.lookup('after'), ['10.0.0.1']);
  assert.deepEqual(value.lookup('bad'), []);
});

test('hosts file: empty input', { timeout: 10_000 }, () => {
  const { value, diagnostics } = parseHostsFile('', 'hosts');
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(value.lookup('localhost'), []);
});
