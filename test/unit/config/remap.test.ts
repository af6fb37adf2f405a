import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diags } from '../../../host/diags.js';
import { parseRemapConfig } from '../../../host/config/remap.js';
import type { Diagnostic, RemapRequest, RemapTable } from '../../../host/config/types.js';

function shown(ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`);
}

function table(text: string): RemapTable {
  const { value, diagnostics } = parseRemapConfig(text, 'remap.config', '/nonexistent');
  assert.deepEqual(shown(diagnostics), []);
  return value;
}

/** `target @line`, `301 location @line`, or null. */
function look(t: RemapTable, req: Partial<RemapRequest> & { host: string }): string | null {
  const r = t.lookup({ scheme: 'http', port: 80, path: '/', recvPort: 8080, method: 'GET', ...req });
  if (r === null) return null;
  return r.kind === 'map' ? `${r.target.href} @${r.rule.line}` : `${r.status} ${r.location} @${r.rule.line}`;
}

/** A fresh config dir holding `files`, removed after the test. */
function configDir(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-remap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

test('remap: map, path prefix and the rest of the path appended', { timeout: 10_000 }, () => {
  const t = table(
    [
      'map http://www.example.com/images/ http://origin.internal:8081/static/img/',
      'map http://www.example.com/ http://origin.internal/',
      'map http://WWW.Example.com:8080/alt http://alt/x',
    ].join('\n'),
  );
  assert.equal(look(t, { host: 'www.example.com', path: '/images/a.png?v=1' }), 'http://origin.internal:8081/static/img/a.png?v=1 @1');
  assert.equal(look(t, { host: 'WWW.EXAMPLE.COM.', path: '/index.html' }), 'http://origin.internal/index.html @2');
  assert.equal(look(t, { host: 'www.example.com', port: 8080, path: '/alt/y' }), 'http://alt/x/y @3');
  assert.equal(look(t, { host: 'www.example.com', port: 8080, path: '/other' }), null, 'port 8080 has only the /alt rule');
  assert.equal(look(t, { host: 'www.example.com', scheme: 'https', port: 443 }), null, 'scheme must match');
  assert.equal(look(t, { host: 'other.example.com' }), null);
  assert.equal(t.rules.length, 3);
  assert.deepEqual(t.rules[2], {
    kind: 'map',
    from: 'http://WWW.Example.com:8080/alt',
    to: 'http://alt/x',
    file: 'remap.config',
    line: 3,
    options: [],
  });
});

test('remap: CONNECT lookups (https, host, port, path /) match identity rules', { timeout: 10_000 }, () => {
  const t = table('map https://peer.ats:4443 https://peer.ats:4443\nmap https://[::1]:4443/ https://[::1]:4443/');
  const connect = { scheme: 'https', path: '/', method: 'CONNECT' } as const;
  assert.equal(look(t, { ...connect, host: 'peer.ats', port: 4443 }), 'https://peer.ats:4443/ @1');
  assert.equal(look(t, { ...connect, host: 'peer.ats', port: 443 }), null);
  assert.equal(look(t, { ...connect, host: '::1', port: 4443 }), 'https://[::1]:4443/ @2');
  assert.equal(look(t, { ...connect, host: '[::1]', port: 4443 }), 'https://[::1]:4443/ @2');
  const r = t.lookup({ ...connect, host: 'peer.ats', port: 4443, recvPort: 8080 });
  assert.ok(r !== null && r.kind === 'map');
  assert.deepEqual([r.target.hostname, r.target.port, r.target.protocol], ['peer.ats', '4443', 'https:']);
});

test('remap precedence: *_with_recv_port, then map/regex_map, then redirects; reverse_map never matches', { timeout: 10_000 }, () => {
  const t = table(
    [
      'redirect http://a.com/ https://a.com/',
      'reverse_map http://a.com/ http://rev/',
      'map http://a.com/ http://mapped/',
      'map_with_recv_port http://a.com:9090/ http://recv/',
      'redirect_temporary http://tmp.com/ https://tmp.com/new/',
    ].join('\n'),
  );
  assert.equal(look(t, { host: 'a.com', recvPort: 9090, path: '/p' }), 'http://recv/p @4');
  assert.equal(look(t, { host: 'a.com', recvPort: 8080, path: '/p' }), 'http://mapped/p @3');
  assert.equal(look(t, { host: 'tmp.com', path: '/p?q' }), '307 https://tmp.com/new/p?q @5');
  const r = table('redirect http://a.com/ https://b.com/\nreverse_map http://x.com/ http://y.com/');
  assert.equal(look(r, { host: 'a.com', path: '/x' }), '301 https://b.com/x @1');
  assert.equal(look(r, { host: 'x.com' }), null, 'reverse_map is for Location headers only');
  assert.equal(r.rules[1]?.kind, 'reverse_map');
});

test('remap precedence: host rules before host-less, else file order (not longest prefix)', { timeout: 10_000 }, () => {
  const t = table(
    [
      'map / http://fallback/',
      'map http://a.com/ http://short/',
      'map http://a.com/long/ http://long/',
      'regex_map http://(.*)\\.a\\.com/ http://$1.regex/',
      'map http://x.a.com/ http://exact-after-regex/',
    ].join('\n'),
  );
  assert.equal(look(t, { host: 'a.com', path: '/long/x' }), 'http://short/long/x @2');
  assert.equal(look(t, { host: 'x.a.com', path: '/p' }), 'http://x.regex/p @4');
  assert.equal(look(t, { host: 'nomatch.com', path: '/p' }), 'http://fallback/p @1');
  assert.equal(look(t, { host: 'nomatch.com', scheme: 'https', port: 8443, path: '/p' }), 'http://fallback/p @1');
  const h = table('map /only/ http://hostless/\nmap http://a.com/other/ http://a/');
  assert.equal(look(h, { host: 'a.com', path: '/only/x' }), 'http://hostless/x @1');
  assert.equal(look(h, { host: 'a.com', path: '/nope' }), null);
});

test('remap: regex_map is anchored, case-insensitive, with $0-$9 in the target host', { timeout: 10_000 }, () => {
  const t = table(
    [
      'regex_map http://(.*)[.]service[.]com/ http://$1.internal:8080/',
      'regex_map https://([a-z]+)-([0-9]+)\\.pool/ https://$2-$1.backend/',
      'regex_map_with_recv_port http://(.+)\\.recv:9000/ http://$0/',
    ].join('\n'),
  );
  assert.equal(look(t, { host: 'Web.Service.COM', path: '/p' }), 'http://web.internal:8080/p @1');
  assert.equal(look(t, { host: 'web.service.com.evil' }), null, 'anchored at the end');
  assert.equal(look(t, { host: 'evil-service.com' }), null);
  assert.equal(look(t, { host: 'db-12.pool', scheme: 'https', port: 443 }), 'https://12-db.backend/ @2');
  assert.equal(look(t, { host: 'a.recv', port: 80, recvPort: 9000 }), 'http://a.recv/ @3');
  assert.equal(look(t, { host: 'a.recv', port: 9000, recvPort: 8080 }), null, 'with_recv_port compares the receiving port');
  assert.equal(look(t, { host: 'x@evil.com.service.com' }), null, 'captures must be host-name characters');
  assert.equal(look(t, { host: 'evil.com/x.service.com' }), null);
});

test('remap: options, filters, continuation and comments', { timeout: 10_000 }, () => {
  const text = [
    'map http://a.com/ http://b.com/ @plugin=header_rewrite.so @pparam=rules.conf @plugin=x.so',
    '.definefilter deny_all @action=deny @src_ip=0.0.0.0-255.255.255.255',
    '.activatefilter deny_all',
    'map http://c.com/ \\',
    '    http://d.com/   # continued',
    '  # an indented comment',
    'map http://e.com/ http://f.com/ @strategy=x # trailing',
  ].join('\n');
  const { value, diagnostics } = parseRemapConfig(text, 'remap.config', '/nonexistent');
  assert.deepEqual(shown(diagnostics), [
    "remap.config:1:33: warning: remap plugins are not supported yet; '@plugin' ignored (the rule maps without it)",
    "remap.config:2:1: warning: '.definefilter' is not supported yet; remap filters are ignored (not enforced)",
    "remap.config:3:1: warning: '.activatefilter' is not supported yet; remap filters are ignored (not enforced)",
    "remap.config:7:33: warning: '@strategy' is not supported; ignored",
  ]);
  assert.equal(look(value, { host: 'a.com' }), 'http://b.com/ @1');
  assert.equal(look(value, { host: 'c.com', path: '/z' }), 'http://d.com/z @4');
  const rules = value.rules;
  assert.deepEqual(rules[0]?.options, [
    { name: 'plugin', value: 'header_rewrite.so' },
    { name: 'pparam', value: 'rules.conf' },
    { name: 'plugin', value: 'x.so' },
  ]);
});

test('remap: every error at file:line:col; good rules still load', { timeout: 10_000 }, () => {
  const text = [
    'map http://ok.com/ http://ok2.com/',
    'mapp http://a/ http://b/',
    'map ftp://a/ http://b/',
    'map http://a.com/',
    'map',
    'map http://a.com:99999/ http://b/',
    'map http://user@a.com/ http://b/',
    'map http://a.com/ /relative',
    'map http://bad_host!/ http://b/',
    'regex_map http://(a/ http://b/',
    'regex_map http://(a)\\.com/ http://$3.x/',
    'regex_map / http://b/',
    'map http://a.com/ http://b/ @src_ip=10.0.0.0/8 @method=GET',
    'map http://a.com/ http://b/ extra',
    'map http://a.com/ @plugin=x.so',
    'regex_redirect http://(.*)/ http://b/',
    '.unknown x',
    '.include',
    'map_with_recv_port /x http://b/',
    'map http://a.com/ http://$1.b/',
    'map http://999.1.1.1/ http://b/',
  ].join('\n');
  const { value, diagnostics } = parseRemapConfig(text, 'remap.config', '/nonexistent');
  assert.deepEqual(shown(diagnostics), [
    "remap.config:2:1: error: unknown directive 'mapp'",
    "remap.config:3:5: error: unsupported scheme 'ftp' in 'ftp://a/' (http, https, ws or wss)",
    "remap.config:4:18: error: missing target URL after 'http://a.com/'",
    "remap.config:5:4: error: 'map' needs a from-URL and a target URL",
    "remap.config:6:5: error: invalid port '99999' in 'http://a.com:99999/'",
    "remap.config:7:5: error: user info is not allowed in 'http://user@a.com/'",
    "remap.config:8:19: error: the target '/relative' needs scheme://host",
    "remap.config:9:5: error: invalid host 'bad_host!' in 'http://bad_host!/'",
    "remap.config:10:11: error: invalid host regex '(a': Invalid regular expression: /^(?:(a)$/i: Unterminated group",
    "remap.config:11:35: error: '$3' but the host regex has 1 capture group(s)",
    "remap.config:12:11: error: regex rules need a host pattern: '/'",
    "remap.config:13:29: error: remap ACL option '@src_ip' is not supported yet (refused rather than ignored); use ip_allow.yaml",
    "remap.config:13:48: error: remap ACL option '@method' is not supported yet (refused rather than ignored); use ip_allow.yaml",
    "remap.config:14:29: error: unexpected 'extra' after the target URL (options start with '@')",
    "remap.config:15:19: error: missing target URL after 'http://a.com/'",
    "remap.config:16:1: error: 'regex_redirect' is not supported yet",
    "remap.config:17:1: error: unknown directive '.unknown'",
    "remap.config:18:1: error: '.include' needs at least one file name",
    "remap.config:19:20: error: 'map_with_recv_port' needs scheme://host:port (the receiving port)",
    "remap.config:20:19: error: invalid host '$1.b' in 'http://$1.b/'",
    "remap.config:21:5: error: invalid host '999.1.1.1' in 'http://999.1.1.1/'",
  ]);
  assert.deepEqual(
    value.rules.map((r) => r.line),
    [1],
  );
});

test('remap: ws/wss rules warn and never match', { timeout: 10_000 }, () => {
  const { value, diagnostics } = parseRemapConfig('map ws://a.com/ ws://b.com/', 'remap.config', '/nonexistent');
  assert.deepEqual(shown(diagnostics), [
    "remap.config:1:5: warning: 'ws' rules match WebSocket upgrades, which tsproxy does not remap: this rule never matches",
  ]);
  assert.equal(look(value, { host: 'a.com' }), null);
});

test('remap: .include files and directories relative to the config dir, in place', { timeout: 10_000 }, (t) => {
  const main = 'map http://first.com/ http://1/\n.include sub/more.config  extra.d\nmap http://last.com/ http://3/\n';
  const dir = configDir(t, {
    'sub/more.config': '# included\nmap http://more.com/ http://2/\nbogus here\n',
    'extra.d/b.config': 'map http://b.com/ http://b/\n',
    'extra.d/a.config': 'map http://a.com/ http://a/\nmap http://b.com/ http://a-wins/\n',
    'extra.d/.hidden': 'garbage\n',
  });
  const { value, diagnostics } = parseRemapConfig(main, 'remap.config', dir);
  assert.deepEqual(shown(diagnostics), ["sub/more.config:3:1: error: unknown directive 'bogus'"]);
  assert.deepEqual(
    value.rules.map((r) => `${r.file}:${r.line}`),
    ['remap.config:1', 'sub/more.config:2', 'extra.d/a.config:1', 'extra.d/a.config:2', 'extra.d/b.config:1', 'remap.config:3'],
  );
  assert.equal(look(value, { host: 'b.com' }), 'http://a-wins/ @2');
});

test('remap: .include cycles, missing files and depth are errors at the .include', { timeout: 10_000 }, (t) => {
  const dir = configDir(t, {
    'a.config': 'map http://a.com/ http://a/\n.include b.config\n',
    'b.config': '\n.include a.config\n',
    'self.config': '.include self.config\n',
  });
  const cyc = parseRemapConfig('.include a.config', 'remap.config', dir);
  assert.deepEqual(shown(cyc.diagnostics), ['b.config:2:10: error: include cycle: remap.config -> a.config -> b.config -> a.config']);
  assert.equal(cyc.value.rules.length, 1);
  const missing = parseRemapConfig('map http://a/ http://b/\n  .include   nope.config', 'remap.config', dir);
  assert.deepEqual(shown(missing.diagnostics), ["remap.config:2:14: error: cannot include 'nope.config': ENOENT"]);
  const self = parseRemapConfig('.include self.config\n', 'self.config', dir);
  assert.deepEqual(shown(self.diagnostics), ['self.config:1:10: error: include cycle: self.config -> self.config']);

  const chain: Record<string, string> = {};
  for (let i = 0; i < 20; i++) chain[`c${i}.config`] = `.include c${i + 1}.config\n`;
  chain['c20.config'] = 'map http://deep/ http://deep/\n';
  const deep = configDir(t, chain);
  const r = parseRemapConfig('.include c0.config', 'remap.config', deep);
  assert.equal(r.diagnostics.length, 1);
  assert.match(shown(r.diagnostics)[0] ?? '', /^c15\.config:1:10: error: '\.include' nested more than 16 deep$/);
});

test('remap: empty and comment-only input', { timeout: 10_000 }, () => {
  const t = table('\n# nothing\n   \n');
  assert.deepEqual(t.rules, []);
  assert.equal(look(t, { host: 'a.com' }), null);
});

test('remap lookups are logged under the url_rewrite debug tag', { timeout: 10_000 }, (t) => {
  const lines: string[] = [];
  const previous = diags.setSink((line) => lines.push(line));
  diags.configure(true, 'url_rewrite');
  t.after(() => {
    diags.setSink(previous);
    diags.configure(false, '');
  });
  const tbl = table('map http://a.com/ http://b.com/');
  look(tbl, { host: 'a.com', path: '/x' });
  look(tbl, { host: 'z.com', path: '/x' });
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /\(url_rewrite\) GET http:\/\/a\.com:80\/x matched remap\.config:1$/);
  assert.match(lines[1] ?? '', /\(url_rewrite\) GET http:\/\/z\.com:80\/x: no remap rule$/);
});
