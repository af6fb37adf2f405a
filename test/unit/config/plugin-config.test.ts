import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_PLUGIN_ARGS, MAX_PLUGIN_LINE, parsePluginConfig, tokenizePluginLine } from '../../../host/config/plugin-config.js';
import type { Diagnostic } from '../../../host/config/types.js';

const RECORDS: ReadonlyMap<string, string | number> = new Map<string, string | number>([
  ['proxy.config.http.connect_ports', '443 4443'],
  ['proxy.config.net.connections_throttle', 30000],
]);

function where(ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}`);
}

test('plugin.config: lines, comments, quotes and $record expansion', { timeout: 10_000 }, () => {
  const text = [
    '# a comment',
    '',
    '   ',
    'tls_bridge.so .*[.]service[.]com peer.ats:4443  # trailing comment',
    '  \t./local.js "two words" "" $proxy.config.net.connections_throttle',
    'x.so "$proxy.config.http.connect_ports" arg#rest of line',
    '   # indented comment',
    'crlf.so a b\r',
  ].join('\n');
  const { value, diagnostics } = parsePluginConfig(text, 'plugin.config', RECORDS);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(value, [
    { file: 'plugin.config', line: 4, name: 'tls_bridge.so', args: ['.*[.]service[.]com', 'peer.ats:4443'], cols: [1, 15, 34] },
    { file: 'plugin.config', line: 5, name: './local.js', args: ['two words', '', '30000'], cols: [4, 15, 27, 30] },
    { file: 'plugin.config', line: 6, name: 'x.so', args: ['443 4443', 'arg'], cols: [1, 6, 41] },
    { file: 'plugin.config', line: 8, name: 'crlf.so', args: ['a', 'b'], cols: [1, 9, 11] },
  ]);
});

test('plugin.config: every bad line is reported at file:line:col, good lines still parse', { timeout: 10_000 }, () => {
  const long = `p.so ${'a'.repeat(MAX_PLUGIN_LINE)}`;
  const many = ['p.so', ...Array.from({ length: MAX_PLUGIN_ARGS }, (_, i) => `a${i}`)].join(' ');
  const text = ['ok.so 1', '  bad.so "unterminated', 'r.so $no.such.record x', long, many, 'ok2.so'].join('\n');
  const { value, diagnostics } = parsePluginConfig(text, 'plugin.config', RECORDS);
  assert.deepEqual(where(diagnostics), [
    'plugin.config:2:10: error',
    'plugin.config:3:6: error',
    `plugin.config:4:${MAX_PLUGIN_LINE + 1}: error`,
    `plugin.config:5:${many.lastIndexOf(' ') + 2}: error`,
  ]);
  assert.match(diagnostics[0]?.message ?? '', /unterminated quote/);
  assert.match(diagnostics[1]?.message ?? '', /unknown record 'no\.such\.record'/);
  assert.match(diagnostics[2]?.message ?? '', /longer than 1023/);
  assert.match(diagnostics[3]?.message ?? '', /too many arguments/);
  assert.deepEqual(
    value.map((p) => p.name),
    ['ok.so', 'ok2.so'],
  );
});

test('plugin.config: limits are inclusive', { timeout: 10_000 }, () => {
  const exact = `p.so ${'a'.repeat(MAX_PLUGIN_LINE - 5)}`;
  assert.equal(exact.length, MAX_PLUGIN_LINE);
  const most = ['p.so', ...Array.from({ length: MAX_PLUGIN_ARGS - 1 }, (_, i) => `a${i}`)].join(' ');
  const { value, diagnostics } = parsePluginConfig(`${exact}\n${most}`, 'plugin.config', RECORDS);
  assert.deepEqual(diagnostics, []);
  assert.equal(value[1]?.args.length, MAX_PLUGIN_ARGS - 1);
});

test('tokenizePluginLine: edge cases', { timeout: 10_000 }, () => {
  assert.deepEqual(tokenizePluginLine(''), { tokens: [] });
  assert.deepEqual(tokenizePluginLine('#x y'), { tokens: [] });
  assert.deepEqual(tokenizePluginLine(' a"b c'), {
    tokens: [
      { text: 'a"b', col: 2 },
      { text: 'c', col: 6 },
    ],
  });
  // As in ATS, text right after a closing quote starts the next token.
  assert.deepEqual(tokenizePluginLine('"a b"c'), {
    tokens: [
      { text: 'a b', col: 1 },
      { text: 'c', col: 6 },
    ],
  });
  assert.deepEqual(tokenizePluginLine('"a # b" #c'), { tokens: [{ text: 'a # b', col: 1 }] });
  assert.deepEqual(tokenizePluginLine('x "oops'), { tokens: [{ text: 'x', col: 1 }], error: { col: 3, message: 'unterminated quote' } });
});

const SPACE = fc.constantFrom(' ', '\t', '  ', ' \t ');
/** A bare token: does not start with `"`, has no whitespace and no `#`. */
const BARE = fc
  .tuple(fc.stringMatching(/^[^\s"#]$/), fc.stringMatching(/^[^\s#]*$/))
  .map(([first, rest]) => first + rest);

test('tokenizePluginLine: bare tokens joined by whitespace re-tokenize to themselves', { timeout: 10_000 }, () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(SPACE, BARE), { maxLength: 20 }), SPACE, (parts, tail) => {
      let line = '';
      const cols: number[] = [];
      for (const [sp, tok] of parts) {
        line += sp;
        cols.push(line.length + 1);
        line += tok;
      }
      line += tail;
      const r = tokenizePluginLine(line);
      assert.equal(r.error, undefined);
      assert.deepEqual(
        r.tokens,
        parts.map(([, tok], i) => ({ text: tok, col: cols[i] })),
      );
    }),
  );
});

test('tokenizePluginLine: quoting any text without `"` gives it back', { timeout: 10_000 }, () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary' }).map((s) => s.replace(/["\n]/g, '')), { maxLength: 8 }), (texts) => {
      const line = texts.map((t) => `"${t}"`).join(' ');
      const r = tokenizePluginLine(line);
      assert.equal(r.error, undefined);
      assert.deepEqual(
        r.tokens.map((t) => t.text),
        texts,
      );
    }),
  );
});

test('tokenizePluginLine: random input never throws and positions are in range', { timeout: 10_000 }, () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (line) => {
      const r = tokenizePluginLine(line);
      for (const t of r.tokens) {
        assert.ok(t.col >= 1 && t.col <= line.length);
        assert.ok(line.startsWith(t.text, t.col - 1) || line.startsWith(`"${t.text}"`, t.col - 1));
      }
      if (r.error) assert.ok(r.error.col >= 1 && r.error.col <= line.length);
    }),
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
      const { diagnostics } = parsePluginConfig(text, 'p', RECORDS);
      for (const d of diagnostics) assert.ok(d.line >= 1 && d.col >= 1);
    }),
  );
});
