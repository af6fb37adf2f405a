import { test } from 'node:test';
import assert from 'node:assert/strict';
import { curl } from '../../helpers/curl.js';
import { httpOrigin } from '../../helpers/servers.js';
import { has, requireTool, run, which } from '../../helpers/tools.js';

test('has / which find installed commands only', () => {
  assert.equal(has('sh'), true);
  assert.match(which('sh') ?? '', /\/sh$/);
  assert.equal(has('no-such-tool-tsproxy'), false);
  assert.equal(which('no-such-tool-tsproxy'), null);
});

test('requireTool: true when present; under CI=true a missing tool fails instead of skipping', (t) => {
  assert.equal(requireTool(t, 'sh'), true);
  const saved = process.env['CI'];
  process.env['CI'] = 'true';
  try {
    assert.throws(() => requireTool(t, 'no-such-tool-tsproxy', 'for the test'), /no-such-tool-tsproxy not installed: for the test \(CI=true/);
  } finally {
    if (saved === undefined) delete process.env['CI'];
    else process.env['CI'] = saved;
  }
});

test('run: output, exit code, input and env', { timeout: 10_000 }, async () => {
  const r = await run('sh', ['-c', 'cat; echo "$X" >&2; exit 3'], { timeoutMs: 5000, input: 'in\x00put', env: { X: 'ex' } });
  assert.deepEqual([r.code, r.signal, r.timedOut, r.stdout.toString('latin1'), r.stderr], [3, null, false, 'in\x00put', 'ex\n']);
});

test('run: kills on timeout', { timeout: 10_000 }, async () => {
  const started = Date.now();
  const r = await run('sleep', ['30'], { timeoutMs: 200 });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.match(r.stderr, /killed after 200 ms/);
  assert.ok(Date.now() - started < 5000);
});

test('run: a command that does not exist rejects', { timeout: 10_000 }, async () => {
  await assert.rejects(run('no-such-tool-tsproxy', [], { timeoutMs: 1000 }), /cannot run no-such-tool-tsproxy/);
});

test('curl: status, headers and body kept apart even when the body looks like headers', { timeout: 20_000 }, async (t) => {
  if (!requireTool(t, 'curl', 'the curl helper runs it')) return;
  const origin = await httpOrigin((_req, res) => {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.writeHead(201, 'Made', { 'x-a': 'b' }).end('HTTP/1.1 200 OK\r\nX: y\r\n\r\nrest');
  });
  t.after(() => origin.close());
  const r = await curl([`http://127.0.0.1:${origin.port}/`]);
  assert.equal(r.exitCode, 0);
  assert.equal(r.statusLine, 'HTTP/1.1 201 Made');
  assert.equal(r.status, 201);
  assert.equal(r.headers['x-a'], 'b');
  assert.equal(r.headers['set-cookie'], 'a=1, b=2');
  assert.equal(r.headerBlocks.length, 1);
  assert.equal(r.body.toString(), 'HTTP/1.1 200 OK\r\nX: y\r\n\r\nrest');
  await origin.close();
  const refused = await curl([`http://127.0.0.1:${origin.port}/`], { maxTimeS: 2 });
  assert.deepEqual([refused.exitCode, refused.status, refused.headerBlocks], [7, 0, []]);
  assert.match(refused.stderr, /Failed to connect/);
});
