import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecordsYaml } from '../../../host/config/records.js';
import type { Diagnostic } from '../../../host/config/types.js';

const T = { timeout: 10_000 };

const F = 'records.yaml';
const where = (ds: readonly Diagnostic[]): string[] => ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);

test('nested maps join with dots under proxy.config.', T, () => {
  const { value, diagnostics } = parseRecordsYaml(
    ['records:', '  http:', '    connect_ports: 443', '    cache:', '      http: 0', '  url_remap:', '    remap_required: 0', ''].join('\n'),
    F,
  );
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(
    [...value].map(([k, e]) => [k, e.value, e.line, e.col]),
    [
      ['proxy.config.http.connect_ports', 443, 3, 20],
      ['proxy.config.http.cache.http', 0, 5, 13],
      ['proxy.config.url_remap.remap_required', 0, 7, 21],
    ],
  );
});

test('flat dotted keys inside the nesting', T, () => {
  const { value, diagnostics } = parseRecordsYaml('records:\n  http.cache.http: 0\n  ssl:\n    client.verify.server.policy: ENFORCED\n', F);
  assert.deepEqual(diagnostics, []);
  assert.equal(value.get('proxy.config.http.cache.http')?.value, 0);
  assert.equal(value.get('proxy.config.ssl.client.verify.server.policy')?.value, 'ENFORCED');
});

test('a quoted value points past its quote; the key position is kept', T, () => {
  const { value } = parseRecordsYaml('records:\n  http:\n    server_ports: "8080 8443:ssl"\n', F);
  const e = value.get('proxy.config.http.server_ports');
  assert.deepEqual([e?.line, e?.col, e?.keyLine, e?.keyCol], [3, 20, 3, 5]);
});

test('YAML tags as ATS plugin records use them', T, () => {
  const { value } = parseRecordsYaml("records:\n  http:\n    cache:\n      http: !!int '0'\n", F);
  assert.equal(value.get('proxy.config.http.cache.http')?.value, 0);
});

test('later documents override earlier ones without a warning', T, () => {
  const { value, diagnostics } = parseRecordsYaml('records:\n  http:\n    connect_ports: 443\n---\nrecords:\n  http:\n    connect_ports: 8443\n', F);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual([value.get('proxy.config.http.connect_ports')?.value, value.get('proxy.config.http.connect_ports')?.line], [8443, 7]);
});

test('the same record twice in one document is a warning at the second key', T, () => {
  const { value, diagnostics } = parseRecordsYaml('records:\n  http.connect_ports: 1\n  http:\n    connect_ports: 2\n', F);
  assert.deepEqual(where(diagnostics), [
    'records.yaml:4:5: warning: proxy.config.http.connect_ports is set twice in this document; the last one wins',
  ]);
  assert.equal(value.get('proxy.config.http.connect_ports')?.value, 2);
});

test('the ATS 9 name exec_thread.autoconfig maps to exec_thread.autoconfig.enabled with a warning', T, () => {
  const { value, diagnostics } = parseRecordsYaml('records:\n  exec_thread:\n    autoconfig: 0\n', F);
  assert.equal(value.get('proxy.config.exec_thread.autoconfig.enabled')?.value, 0);
  assert.deepEqual(where(diagnostics), [
    'records.yaml:3:5: warning: proxy.config.exec_thread.autoconfig is named proxy.config.exec_thread.autoconfig.enabled since ATS 10; using it',
  ]);
});

test('empty input, comments only, and an empty records key give nothing and no error', T, () => {
  for (const text of ['', '# nothing\n', 'records:\n', '---\n']) {
    const { value, diagnostics } = parseRecordsYaml(text, F);
    assert.deepEqual([value.size, diagnostics], [0, []], JSON.stringify(text));
  }
});

test('syntax errors are errors at their positions, all of them', T, () => {
  assert.deepEqual(where(parseRecordsYaml('records:\n\thttp: 1\n', F).diagnostics), [
    'records.yaml:2:1: error: YAML syntax error: Tabs are not allowed as indentation',
  ]);
  assert.deepEqual(where(parseRecordsYaml('records:\n  http: x\n   y: 2\n', F).diagnostics), [
    'records.yaml:2:9: error: YAML syntax error: Nested mappings are not allowed in compact mappings',
    'records.yaml:2:9: error: YAML syntax error: Implicit keys need to be on a single line',
  ]);
});

test('a duplicate key is a syntax error at the second key', T, () => {
  const { diagnostics } = parseRecordsYaml('records:\n  http:\n    connect_ports: 1\n    connect_ports: 2\n', F);
  assert.equal(diagnostics.length, 1);
  assert.deepEqual([diagnostics[0]?.line, diagnostics[0]?.col, diagnostics[0]?.severity], [4, 5, 'error']);
});

test('structure errors: no records key, root not a map, records not a map, odd keys', T, () => {
  assert.deepEqual(where(parseRecordsYaml('http:\n  x: 1\n', F).diagnostics), [
    "records.yaml:1:1: warning: unknown top-level key 'http' (expected 'records'); ignored",
    "records.yaml:1:1: error: no 'records' key at the top level",
  ]);
  assert.deepEqual(where(parseRecordsYaml('- records\n', F).diagnostics), [
    "records.yaml:1:1: error: the top level must be a map with a 'records' key",
  ]);
  assert.deepEqual(where(parseRecordsYaml('records: 5\n', F).diagnostics), ["records.yaml:1:10: error: 'records' must be a map of records"]);
  assert.deepEqual(where(parseRecordsYaml('records:\n  ? [a]\n  : 1\n', F).diagnostics), [
    'records.yaml:2:5: error: a record key must be a name (under proxy.config.)',
  ]);
});

test('non-scalar values are kept for the schema to reject', T, () => {
  const { value } = parseRecordsYaml('records:\n  http:\n    connect_ports: [443, 8443]\n', F);
  assert.deepEqual(value.get('proxy.config.http.connect_ports')?.value, [443, 8443]);
});
