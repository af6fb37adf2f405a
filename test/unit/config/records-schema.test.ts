import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_ROOT, REPO_ROOT } from '../../helpers/paths.js';
import {
  RECORDS,
  RECORDS_SCHEMA,
  coerceRecordValue,
  parseAtsInt,
  recordsMarkdownTable,
} from '../../../host/config/records-schema.js';
import { schemaErrors } from '../../../host/config/records.js';
import { VALIDATOR_FILE, recordsValidatorSource } from '../../../host/config/records-codegen.js';
import { closestName, levenshtein } from '../../../host/config/suggest.js';

const T = { timeout: 10_000 };

test('every record has a type, a default its own schema accepts, and a one-line description', T, () => {
  assert.equal(RECORDS.length, Object.keys(RECORDS_SCHEMA.properties).length);
  for (const r of RECORDS) {
    assert.ok(r.name.startsWith('proxy.config.'), r.name);
    assert.ok(r.description.length > 0 && !r.description.includes('\n'), r.name);
    assert.deepEqual(schemaErrors({ [r.name]: r.default }), [], r.name);
  }
});

test('the built validator is generated from the current schema (npm run build rewrites it)', T, () => {
  assert.equal(readFileSync(VALIDATOR_FILE, 'utf8'), recordsValidatorSource());
});

test('the running proxy never loads ajv, nor http-proxy-3 before a request needs it (a small heap)', T, () => {
  const offenders: string[] = [];
  for (const dir of ['host', 'plugins']) {
    for (const f of readdirSync(join(BUILD_ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.js') || f.endsWith('records-codegen.js')) continue;
      const text = readFileSync(join(BUILD_ROOT, dir, f), 'utf8');
      if (/^import [^;]*from ['"](ajv|http-proxy-3)[/'"]/m.test(text)) offenders.push(`${dir}/${f}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('ATS integers: digits with K/M/G/T suffixes, nothing else', T, () => {
  assert.deepEqual(
    ['0', '42', '-1', ' 7 ', '128K', '1M', '2G', '1T'].map(parseAtsInt),
    [0, 42, -1, 7, 131072, 1048576, 2147483648, 1099511627776],
  );
  assert.deepEqual(['', 'abc', '1.5', '1k', '0x10', '1 2', 'K'].map(parseAtsInt), [null, null, null, null, null, null, null]);
});

test('coercion: numeric strings for INT records, scalars as text for STRING records', T, () => {
  assert.equal(coerceRecordValue('proxy.config.http.cache.http', '0'), 0);
  assert.equal(coerceRecordValue('proxy.config.http.cache.http', 'abc'), 'abc');
  assert.equal(coerceRecordValue('proxy.config.http.connect_ports', 443), '443');
  assert.equal(coerceRecordValue('proxy.config.diags.debug.tags', true), 'true');
  assert.equal(coerceRecordValue('proxy.config.ssl.CA.cert.path', null), '');
  assert.equal(coerceRecordValue('proxy.config.unknown', '1'), '1');
});

test('levenshtein and closestName', T, () => {
  assert.deepEqual(
    [levenshtein('', ''), levenshtein('abc', ''), levenshtein('kitten', 'sitting'), levenshtein('conect', 'connect')],
    [0, 3, 3, 1],
  );
  const names = ['proxy.config.http.connect_ports', 'proxy.config.http.server_ports'];
  assert.equal(closestName('proxy.config.http.conect_ports', names), 'proxy.config.http.connect_ports');
  assert.equal(closestName('proxy.config.log.logging_enabled', names), null);
  assert.equal(closestName('ab', ['ac']), null);
});

test('the README records table is the one generated from the schema', T, () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /<!-- records:start -->\n([\s\S]*?)\n<!-- records:end -->/.exec(readme);
  assert.ok(m, 'README.md has the records markers');
  assert.equal(m[1]?.trim(), recordsMarkdownTable());
});
