import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { withYaml } from '../../../host/api/index.js';
import { parseIpAllowYaml } from '../../../host/config/ip-allow.js';
import { parseRecordsYaml } from '../../../host/config/records.js';

const require = createRequire(import.meta.url);
const yamlDir = dirname(require.resolve('yaml'));
const yamlLoaded = (): string[] => Object.keys(require.cache).filter((k) => k.startsWith(yamlDir));

test('the yaml parser is released after each config parse (a small resident heap)', { timeout: 10_000 }, () => {
  const records = parseRecordsYaml('records:\n  http:\n    server_ports: "8080"\n', 'records.yaml');
  assert.equal(records.value.get('proxy.config.http.server_ports')?.value, '8080');
  assert.deepEqual(yamlLoaded(), []);
  const acl = parseIpAllowYaml('ip_allow:\n  - apply: in\n    ip_addrs: 127.0.0.1\n    action: allow\n', 'ip_allow.yaml');
  assert.deepEqual(acl.diagnostics, []);
  assert.deepEqual(yamlLoaded(), []);
  // While the callback runs the module is there; a throw still releases it.
  assert.throws(() =>
    withYaml((yaml) => {
      assert.ok(yamlLoaded().length > 0);
      assert.equal(yaml.parse('a: 1').a, 1);
      throw new Error('boom');
    }),
  /boom/);
  assert.deepEqual(yamlLoaded(), []);
});
