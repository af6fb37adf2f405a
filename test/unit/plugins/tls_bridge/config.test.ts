import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  compileRule,
  isValidPeer,
  parseBridgeArgs,
  parseBridgeFile,
  pluginLineTokens,
  type BridgeDiagnostic,
} from '../../../../plugins/tls_bridge/config.js';
import { TlsBridgeErrorCode } from '../../../../plugins/tls_bridge/errors.js';
import plugin from '../../../../plugins/tls_bridge/index.js';
import { PluginArgsError } from '../../../../host/api/index.js';

/** A config dir with plugin.config holding `line` on line 3, plus extra files. */
function configDir(t: { after(fn: () => void): void }, line: string, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tls-bridge-cfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'plugin.config'), `# plugins\n\n${line}\n`);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const args = pluginLineTokens(line).map((tok) => tok.text);
  return { dir, file: join(dir, 'plugin.config'), ctx: { configDir: dir, file: join(dir, 'plugin.config'), line: 3 }, args };
}

const where = (d: BridgeDiagnostic): string => `${d.file}:${d.line}:${d.col} ${d.code}`;

test('positional pairs become ordered rules; first match wins', (t) => {
  const c = configDir(t, 'tls_bridge.so .*[.]service[.]com peer.ats:4443 www[.]service[.]com other.ats:4443');
  const { config, diagnostics } = parseBridgeArgs(c.ctx, c.args);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(
    config.rules.map((r) => [r.pattern, r.peer, r.file, r.line]),
    [
      ['.*[.]service[.]com', 'peer.ats:4443', c.file, 3],
      ['www[.]service[.]com', 'other.ats:4443', c.file, 3],
    ],
  );
  assert.equal(config.match('www.service.com')?.peer, 'peer.ats:4443');
  assert.equal(config.match('someservice.com'), null);
});

test('regexes are anchored at both ends and case-insensitive', (t) => {
  const c = configDir(t, 'tls_bridge.so .*[.]service[.]com peer.ats:4443');
  const { config } = parseBridgeArgs(c.ctx, c.args);
  assert.equal(config.match('x.service.com.evil'), null);
  assert.equal(config.match('evil.x.service.comx'), null);
  assert.equal(config.match('WWW.Service.COM')?.peer, 'peer.ats:4443');
  assert.equal(config.match('www.service.com.')?.peer, 'peer.ats:4443', 'one trailing dot is the same name');
  const alt = compileRule('a|b');
  assert.ok(alt instanceof RegExp);
  assert.equal(alt.test('ab'), false, 'alternation stays inside the anchors');
  assert.equal(alt.test('b'), true);
});

test('a pattern cannot escape the anchoring group', () => {
  assert.equal(typeof compileRule('a)|(b'), 'string');
  assert.equal(typeof compileRule('a\\'), 'string');
  assert.equal(typeof compileRule('(unclosed'), 'string');
});

test('--file rules are read in place: positional before file, file before positional', (t) => {
  const file = '# Primary service location.\n   .*[.]service[.]com   file.ats:4443\n\n  # Secondary.\n.*[.]altsvc.ats altpeer.ats:4443\n';
  const first = configDir(t, 'tls_bridge.so .*[.]service[.]com peer.ats:4443 --file bridge.config', { 'bridge.config': file });
  const a = parseBridgeArgs(first.ctx, first.args);
  assert.deepEqual(a.diagnostics, []);
  assert.deepEqual(a.config.rules.map((r) => r.peer), ['peer.ats:4443', 'file.ats:4443', 'altpeer.ats:4443']);
  assert.equal(a.config.match('www.service.com')?.peer, 'peer.ats:4443');
  assert.deepEqual(a.config.rules.slice(1).map((r) => [r.file, r.line]), [
    [join(first.dir, 'bridge.config'), 2],
    [join(first.dir, 'bridge.config'), 5],
  ]);

  const second = configDir(t, 'tls_bridge.so --file bridge.config .*[.]service[.]com peer.ats:4443', { 'bridge.config': file });
  const b = parseBridgeArgs(second.ctx, second.args);
  assert.deepEqual(b.diagnostics, []);
  assert.equal(b.config.match('www.service.com')?.peer, 'file.ats:4443');
  assert.equal(b.config.match('x.altsvc.ats')?.peer, 'altpeer.ats:4443');
});

test('several --file options keep their order; absolute names are used as they are', (t) => {
  const c = configDir(t, 'tls_bridge.so --file one.config --file ABS', {
    'one.config': 'a[.]example one.ats\n',
  });
  const abs = join(c.dir, 'sub');
  mkdirSync(abs);
  writeFileSync(join(abs, 'two.config'), 'a[.]example two.ats\nb[.]example two.ats:1\n');
  const args = c.args.map((a) => (a === 'ABS' ? join(abs, 'two.config') : a));
  const { config, diagnostics } = parseBridgeArgs(c.ctx, args);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(config.rules.map((r) => r.peer), ['one.ats', 'two.ats', 'two.ats:1']);
});

test('file lines: " #" after the peer starts a comment; CRLF endings; blank lines', () => {
  const { config, diagnostics } = parseBridgeFile(
    '\r\n  \t\r\nfoo[.]com peer.ats:4443 # the main one\r\nbar[.]com\tpeer.ats:4443\t#tab comment\r\n#x y\r\n',
    '/etc/bridge.config',
  );
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(config.rules.map((r) => [r.pattern, r.peer, r.line]), [
    ['foo[.]com', 'peer.ats:4443', 3],
    ['bar[.]com', 'peer.ats:4443', 4],
  ]);
});

test('file line errors name the file, line and column', () => {
  const text = [
    'ok[.]com peer.ats', // 1
    '  lonely[.]com', // 2: no peer
    'x[.]com #peer.ats', // 3: comment where the peer should be
    'y[.]com peer.ats#c', // 4: '#' without whitespace is part of the peer
    'z[.]com peer.ats extra words # c', // 5: trailing text
    '(bad peer.ats', // 6: regex
    'w[.]com peer.ats:99999', // 7: port out of range
    '   (bad  bad:peer:1', // 8: both
  ].join('\n');
  const { config, diagnostics } = parseBridgeFile(text, '/b.config');
  assert.equal(config.rules.length, 1);
  assert.deepEqual(diagnostics.map(where), [
    `/b.config:2:3 ${TlsBridgeErrorCode.NO_PEER}`,
    `/b.config:3:1 ${TlsBridgeErrorCode.NO_PEER}`,
    `/b.config:4:9 ${TlsBridgeErrorCode.BAD_PEER}`,
    `/b.config:5:18 ${TlsBridgeErrorCode.TRAILING_TEXT}`,
    `/b.config:6:1 ${TlsBridgeErrorCode.BAD_REGEX}`,
    `/b.config:7:9 ${TlsBridgeErrorCode.BAD_PEER}`,
    `/b.config:8:4 ${TlsBridgeErrorCode.BAD_REGEX}`,
    `/b.config:8:10 ${TlsBridgeErrorCode.BAD_PEER}`,
  ]);
  assert.match(diagnostics[0]?.message ?? '', /^Regular expression 'lonely\[\.\]com' without destination service$/);
  assert.match(diagnostics[3]?.message ?? '', /'extra words' after destination service 'peer\.ats'/);
});

test('argument errors are all collected, at the plugin.config line and the argument column', (t) => {
  const line = 'tls_bridge.so --bogus a[.]com peer.ats -x --file missing.config b[.]com bad_peer:0 (x p.ats --file';
  const c = configDir(t, line);
  const { config, diagnostics } = parseBridgeArgs(c.ctx, c.args);
  const col = (tok: string, from = 0): number => line.indexOf(tok, from) + 1;
  assert.deepEqual(diagnostics.map(where), [
    `${c.file}:3:${col('--bogus')} ${TlsBridgeErrorCode.UNKNOWN_OPTION}`,
    `${c.file}:3:${col('-x')} ${TlsBridgeErrorCode.UNKNOWN_OPTION}`,
    `${c.file}:3:${col('missing.config')} ${TlsBridgeErrorCode.FILE_UNREADABLE}`,
    `${c.file}:3:${col('bad_peer')} ${TlsBridgeErrorCode.BAD_PEER}`,
    `${c.file}:3:${col('(x')} ${TlsBridgeErrorCode.BAD_REGEX}`,
    `${c.file}:3:${col('--file', col('p.ats'))} ${TlsBridgeErrorCode.NO_FILE_NAME}`,
  ]);
  assert.deepEqual(config.rules.map((r) => r.pattern), ['a[.]com'], 'the pairing is not shifted by an unknown option');
  assert.equal(diagnostics[0]?.message, "Unrecognized option '--bogus'");
  assert.match(diagnostics[2]?.message ?? '', /unable to read file '.*missing\.config' : ENOENT/);
  assert.equal(diagnostics[5]?.message, "Invalid '--file' argument - no file name found.");
});

test('a regex without a peer, before an option or at the end', (t) => {
  const line = 'tls_bridge.so a[.]com --file b.config c[.]com';
  const c = configDir(t, line, { 'b.config': '' });
  const { diagnostics } = parseBridgeArgs(c.ctx, c.args);
  assert.deepEqual(diagnostics.map((d) => [d.col, d.code, d.message]), [
    [line.indexOf('a[') + 1, TlsBridgeErrorCode.NO_PEER, "Regular expression 'a[.]com' without destination service"],
    [line.indexOf('c[') + 1, TlsBridgeErrorCode.NO_PEER, "Regular expression 'c[.]com' without destination service"],
  ]);
});

test('--file followed by an option has no file name; dashes pasted from the docs are caught', (t) => {
  const c = configDir(t, 'tls_bridge.so --file --file ok.config \u2013file x.config', { 'ok.config': 'a p\n' });
  const { diagnostics, config } = parseBridgeArgs(c.ctx, c.args);
  assert.deepEqual(diagnostics.map((d) => d.code), [
    TlsBridgeErrorCode.NO_FILE_NAME,
    TlsBridgeErrorCode.UNKNOWN_OPTION,
    TlsBridgeErrorCode.NO_PEER,
  ]);
  assert.match(diagnostics[1]?.message ?? '', /did you mean '--file'/);
  assert.equal(config.rules.length, 1);
});

test('errors inside a --file name the bridge file, beside plugin.config errors', (t) => {
  const c = configDir(t, 'tls_bridge.so --file b.config q[.]com', { 'b.config': '\n\n   only[.]regex\n' });
  const { diagnostics } = parseBridgeArgs(c.ctx, c.args);
  assert.deepEqual(diagnostics.map(where), [
    `${join(c.dir, 'b.config')}:3:4 ${TlsBridgeErrorCode.NO_PEER}`,
    `${c.file}:3:${'tls_bridge.so --file b.config q'.length} ${TlsBridgeErrorCode.NO_PEER}`,
  ]);
});

test('an unreadable --file (a directory) is an error', (t) => {
  const c = configDir(t, 'tls_bridge.so --file sub');
  mkdirSync(join(c.dir, 'sub'));
  const { diagnostics } = parseBridgeArgs(c.ctx, c.args);
  assert.deepEqual(diagnostics.map((d) => [d.col, d.code]), [[22, TlsBridgeErrorCode.FILE_UNREADABLE]]);
});

test('columns fall back to 1 when plugin.config cannot be read', () => {
  const ctx = { configDir: '/nonexistent', file: '/nonexistent/plugin.config', line: 7 };
  const { diagnostics } = parseBridgeArgs(ctx, ['tls_bridge.so', '--x']);
  assert.deepEqual(diagnostics.map(where), [`/nonexistent/plugin.config:7:1 ${TlsBridgeErrorCode.UNKNOWN_OPTION}`]);
});

test('no arguments: no rules, no errors', () => {
  const { config, diagnostics } = parseBridgeArgs({ configDir: '/', file: '/plugin.config', line: 1 }, ['tls_bridge.so']);
  assert.equal(config.rules.length, 0);
  assert.deepEqual(diagnostics, []);
});

test('peers are host[:port]', () => {
  for (const ok of ['peer.ats', 'peer.ats:4443', '10.0.0.1:1', '[::1]:443', '[fe80::1]', 'a_b.example', 'x', 'peer.ats.']) {
    assert.equal(isValidPeer(ok), true, ok);
  }
  for (const bad of ['', ':443', 'peer.ats:', 'peer.ats:0', 'peer.ats:65536', '::1', '[::1', '[zz]:1', 'a b', 'https://p', '-p.ats', 'p..ats', 'p.ats/x']) {
    assert.equal(isValidPeer(bad), false, bad);
  }
});

test('plugin.config tokens: quotes and # comments as the host reads them', () => {
  assert.deepEqual(pluginLineTokens('  a.so "x y" z#c'), [
    { text: 'a.so', col: 3 },
    { text: 'x y', col: 8 },
    { text: 'z', col: 14 },
  ]);
  assert.deepEqual(pluginLineTokens('# all comment'), []);
});

test('verify returns the diagnostics; init throws PluginArgsError with the same ones', (t) => {
  const c = configDir(t, 'tls_bridge.so --bogus a[.]com');
  const diags = plugin.verify?.(c.ctx, c.args) ?? [];
  assert.equal(diags.length, 2);
  const api = { configDir: c.dir, pluginLine: c.ctx } as unknown as Parameters<typeof plugin.init>[0];
  assert.throws(
    () => plugin.init(api, c.args),
    (err: unknown) => {
      assert.ok(err instanceof PluginArgsError);
      assert.equal(err.code, 'PXY_ERR_PLUGIN_ARGS');
      assert.deepEqual(err.diagnostics, diags);
      return true;
    },
  );
});
