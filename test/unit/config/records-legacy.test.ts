import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecordsConfig } from '../../../host/config/records.js';
import type { Diagnostic } from '../../../host/config/types.js';

const T = { timeout: 10_000 };

const F = 'records.config';
const where = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);

test('CONFIG and LOCAL lines, comments, blank lines, CRLF', T, () => {
  const text = [
    '# a comment',
    '',
    'CONFIG proxy.config.http.connect_ports STRING 443 8443  ',
    '   # indented comment',
    'LOCAL proxy.config.http.cache.http INT 0\r',
    'CONFIG proxy.config.diags.debug.tags STRING http|dns|ssl',
    'CONFIG proxy.config.http.request_header_max_size INT 128K',
    'CONFIG proxy.config.some.float FLOAT 1.5',
    'CONFIG proxy.config.some.counter COUNTER 7',
  ].join('\n');
  const { value, diagnostics } = parseRecordsConfig(text, F);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(
    [...value].map(([k, e]) => [k, e.value, e.line, e.col, e.keyCol]),
    [
      ['proxy.config.http.connect_ports', '443 8443', 3, 47, 8],
      ['proxy.config.http.cache.http', 0, 5, 40, 7],
      ['proxy.config.diags.debug.tags', 'http|dns|ssl', 6, 45, 8],
      ['proxy.config.http.request_header_max_size', 131072, 7, 54, 8],
      ['proxy.config.some.float', 1.5, 8, 38, 8],
      ['proxy.config.some.counter', 7, 9, 42, 8],
    ],
  );
});

test('STRING NULL and an empty STRING are the empty string; " #" starts a comment', T, () => {
  const { value, diagnostics } = parseRecordsConfig(
    'CONFIG proxy.config.ssl.client.cert.filename STRING NULL\nCONFIG proxy.config.ssl.CA.cert.path STRING\nCONFIG proxy.config.http.cache.http INT 0 # off\n',
    F,
  );
  assert.deepEqual(diagnostics, []);
  assert.equal(value.get('proxy.config.ssl.client.cert.filename')?.value, '');
  assert.equal(value.get('proxy.config.ssl.CA.cert.path')?.value, '');
  assert.equal(value.get('proxy.config.http.cache.http')?.value, 0);
});

test('the ATS 9 name exec_thread.autoconfig is read as exec_thread.autoconfig.enabled', T, () => {
  const { value, diagnostics } = parseRecordsConfig('CONFIG proxy.config.exec_thread.autoconfig INT 0\n', F);
  assert.deepEqual(diagnostics, []);
  assert.equal(value.get('proxy.config.exec_thread.autoconfig.enabled')?.value, 0);
});

test('every line error, all collected, at file:line:col', T, () => {
  const text = [
    'SET proxy.config.http.cache.http INT 0',
    'CONFIG',
    'CONFIG proxy.config.http.cache.http',
    'CONFIG proxy.config.http.cache.http BOOL 0',
    'CONFIG proxy.config.http.cache.http INT abc',
    'CONFIG proxy.config.http.cache.http INT',
    'CONFIG proxy.config.http.connect_ports INT 443',
    'CONFIG proxy.config.http.cache.http STRING 0',
    'CONFIG proxy.config.other FLOAT x1',
  ].join('\n');
  assert.deepEqual(where(parseRecordsConfig(text, F).diagnostics), [
    "records.config:1:1: error: expected CONFIG or LOCAL at the start of the line, got 'SET'",
    'records.config:2:7: error: missing record name',
    'records.config:3:36: error: record proxy.config.http.cache.http has no type',
    "records.config:4:37: error: record proxy.config.http.cache.http: unknown type 'BOOL' (expected INT, STRING, FLOAT or COUNTER)",
    "records.config:5:41: error: proxy.config.http.cache.http: INT value 'abc' is not an integer",
    "records.config:6:40: error: proxy.config.http.cache.http: INT value '' is not an integer",
    'records.config:7:40: error: proxy.config.http.connect_ports is a STRING record, not INT',
    'records.config:8:37: error: proxy.config.http.cache.http is an INT record, not STRING',
    "records.config:9:33: error: proxy.config.other: FLOAT value 'x1' is not a number",
  ]);
});

test('a record set twice: a warning, the last one wins', T, () => {
  const { value, diagnostics } = parseRecordsConfig(
    'CONFIG proxy.config.http.connect_ports STRING 443\nCONFIG proxy.config.http.connect_ports STRING 8443\n',
    F,
  );
  assert.equal(value.get('proxy.config.http.connect_ports')?.value, '8443');
  assert.deepEqual(where(diagnostics), [
    'records.config:2:8: warning: proxy.config.http.connect_ports is set again (first at line 1); the last one wins',
  ]);
});
