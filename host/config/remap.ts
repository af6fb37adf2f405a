/**
 * remap.config: `TYPE FROM TO [@option=value...]` per line, `#` comments, a trailing `\`
 * continues a line, `.include FILE...` pulls in other files (relative to the config directory;
 * a directory includes its files in name order).
 *
 * Matching follows ATS:
 * - FROM is `scheme://host[:port][/path-prefix]` (the port defaults to the scheme's) or a host-less
 *   `/path-prefix`, which matches any scheme, host and port.
 * - Precedence groups: `*_with_recv_port` (port = the port the request arrived on), then
 *   `map`/`regex_map`, then `redirect` (301) / `redirect_temporary` (307). `reverse_map` only
 *   rewrites Location headers in ATS: it is kept in `rules` but never matches a request.
 * - Within a group, rules with a host come before host-less rules; otherwise the earliest rule in
 *   the file wins (not the longest path).
 * - The path is a prefix match; the rest of the request path (and query) is appended to the
 *   target's path.
 * - `regex_*`: the FROM host is a regular expression matched against the whole host name,
 *   case-insensitively; `$0`-`$9` in the target host are replaced by the captures.
 * - A CONNECT is looked up as scheme https, its host and port, path `/`, so
 *   `map https://peer:4443 https://peer:4443` allows it.
 *
 * tsproxy decisions:
 * - `@plugin`/`@pparam` give a warning ('remap plugins are not supported yet') and the rule maps
 *   without the plugin.
 * - ACL options (`@action`, `@src_ip`, `@method`, ...) are errors: ignoring an access rule could
 *   open the proxy, so the config is refused; use ip_allow.yaml.
 * - `.definefilter`/`.activatefilter`/`.deactivatefilter`/`.deletefilter` give a warning and are
 *   ignored, as the brief for this parser asks.
 * - `ws://`/`wss://` rules are accepted with a warning; they match WebSocket upgrades in ATS, which
 *   tsproxy does not remap, so they never match.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { diags } from '../diags.js';
import type { Diagnostic, Parsed, RemapKind, RemapRequest, RemapResult, RemapRule, RemapTable } from './types.js';

const dbg = diags.dbgCtl('url_rewrite');

export const MAX_INCLUDE_DEPTH = 16;

const KINDS: ReadonlySet<string> = new Set<RemapKind>([
  'map',
  'reverse_map',
  'regex_map',
  'redirect',
  'redirect_temporary',
  'map_with_recv_port',
  'regex_map_with_recv_port',
]);
const UNSUPPORTED_KINDS = new Set(['map_with_referer', 'regex_redirect', 'regex_redirect_temporary', 'regex_map_with_referer']);
const FILTER_DIRECTIVES = new Set(['.definefilter', '.activatefilter', '.deactivatefilter', '.deletefilter']);
const PLUGIN_OPTIONS = new Set(['plugin', 'pparam']);
const ACL_OPTIONS = new Set(['action', 'src_ip', 'src_ip_invert', 'src_ip_category', 'in_ip', 'method', 'internal']);
const IGNORED_OPTIONS = new Set(['strategy', 'volume', 'mapid']);
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443, ws: 80, wss: 443 };
const HOST_RE = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/;

/** 0: *_with_recv_port, 1: map/regex_map, 2: redirect*; null: reverse_map (never matches). */
function groupOf(kind: RemapKind): 0 | 1 | 2 | null {
  switch (kind) {
    case 'map_with_recv_port':
    case 'regex_map_with_recv_port':
      return 0;
    case 'map':
    case 'regex_map':
      return 1;
    case 'redirect':
    case 'redirect_temporary':
      return 2;
    case 'reverse_map':
      return null;
  }
}

/** One `@name=value` option as written (name lower-cased; value null for a bare `@name`). */
export interface RemapOption {
  readonly name: string;
  readonly value: string | null;
}

/** The rules in a parsed table carry their options (kept for when remap plugins are supported). */
export interface RemapRuleWithOptions extends RemapRule {
  readonly options: readonly RemapOption[];
}

/** A RemapTable whose rules carry their options. */
export interface ParsedRemapTable extends RemapTable {
  readonly rules: readonly RemapRuleWithOptions[];
}

interface Token {
  readonly text: string;
  readonly line: number;
  readonly col: number;
}

/** The parts of a remap URL. `host` is '' for a host-less FROM (then scheme and port are null). */
interface UrlParts {
  readonly scheme: string | null;
  readonly host: string;
  /** Explicit port, or null. */
  readonly port: number | null;
  /** Without the leading `/`. */
  readonly path: string;
}

interface CompiledRule {
  readonly rule: RemapRuleWithOptions;
  readonly group: 0 | 1 | 2 | null;
  readonly from: UrlParts;
  /** For regex_* rules: the anchored, case-insensitive host pattern. */
  readonly hostRe: RegExp | null;
  readonly to: UrlParts;
}

function normalizeHost(host: string): string {
  const h = host.toLowerCase();
  const unbracketed = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

/** Split a remap URL. `regexHost` skips host validation (the host is a pattern). */
function parseUrl(text: string, regexHost: boolean): UrlParts | string {
  if (text.startsWith('/')) return { scheme: null, host: '', port: null, path: text.slice(1) };
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/]*)(?:\/(.*))?$/.exec(text);
  if (m === null) return `invalid URL '${text}' (expected scheme://host[:port][/path] or /path)`;
  const scheme = (m[1] ?? '').toLowerCase();
  const authority = m[2] ?? '';
  if (DEFAULT_PORTS[scheme] === undefined) return `unsupported scheme '${scheme}' in '${text}' (http, https, ws or wss)`;
  if (!regexHost && authority.includes('@')) return `user info is not allowed in '${text}'`;
  let host = authority;
  let portText: string | null = null;
  const v6 = /^(\[[^\]]*\])(?::(.*))?$/.exec(authority);
  if (v6 !== null) {
    host = v6[1] ?? '';
    portText = v6[2] ?? null;
  } else {
    const p = /^(.*):([^:]*)$/.exec(authority);
    if (p !== null && (!regexHost || /^\d*$/.test(p[2] ?? ''))) {
      host = p[1] ?? '';
      portText = p[2] ?? '';
    }
  }
  if (host === '') return `missing host in '${text}'`;
  let port: number | null = null;
  if (portText !== null) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return `invalid port '${portText}' in '${text}'`;
    }
    port = Number(portText);
  }
  if (!regexHost) {
    const h = normalizeHost(host);
    const literal = host.startsWith('[') ? URL.canParse(`http://${host}/`) : HOST_RE.test(h) && URL.canParse(`http://${h}/`);
    if (!literal) return `invalid host '${host}' in '${text}'`;
    host = h;
  }
  return { scheme, host, port, path: m[3] ?? '' };
}

function captureCount(re: RegExp): number {
  return (new RegExp(`${re.source}|`).exec('')?.length ?? 1) - 1;
}

/** Build the target for a matched rule; null if the result is not a valid URL. */
function targetUrl(c: CompiledRule, captures: RegExpExecArray | null, rest: string): URL | null {
  const to = c.to;
  let host = to.host.includes(':') ? `[${to.host}]` : to.host;
  if (captures !== null) {
    // Captures come from the request's Host: only host-name characters may reach the target.
    host = to.host.replace(/\$(\d)/g, (_, d: string) => captures[Number(d)] ?? '');
    if (!HOST_RE.test(host.toLowerCase())) return null;
  }
  const port = to.port === null ? '' : `:${to.port}`;
  try {
    return new URL(`${to.scheme ?? 'http'}://${host}${port}/${to.path}${rest}`);
  } catch {
    return null;
  }
}

function matchRule(c: CompiledRule, req: RemapRequest, host: string, path: string, recvPort: boolean): RemapResult | null {
  if (!path.startsWith(c.from.path)) return null;
  let captures: RegExpExecArray | null = null;
  if (c.from.host !== '') {
    if (c.from.scheme !== req.scheme) return null;
    const port = c.from.port ?? DEFAULT_PORTS[c.from.scheme] ?? 0;
    if (port !== (recvPort ? req.recvPort : req.port)) return null;
    if (c.hostRe !== null) {
      captures = c.hostRe.exec(host);
      if (captures === null) return null;
    } else if (c.from.host !== host) return null;
  }
  const target = targetUrl(c, captures, path.slice(c.from.path.length));
  if (target === null) return null;
  if (c.group === 2) {
    return { kind: 'redirect', status: c.rule.kind === 'redirect' ? 301 : 307, location: target.href, rule: c.rule };
  }
  return { kind: 'map', target, rule: c.rule };
}

class Table implements ParsedRemapTable {
  readonly rules: readonly RemapRuleWithOptions[];
  /** Per precedence group: rules with a host, then host-less ones, each in file order. */
  readonly #groups: readonly (readonly CompiledRule[])[];

  constructor(compiled: readonly CompiledRule[]) {
    this.rules = compiled.map((c) => c.rule);
    this.#groups = ([0, 1, 2] as const).map((g) => {
      const inGroup = compiled.filter((c) => c.group === g);
      return [...inGroup.filter((c) => c.from.host !== ''), ...inGroup.filter((c) => c.from.host === '')];
    });
  }

  lookup(req: RemapRequest): RemapResult | null {
    const host = normalizeHost(req.host);
    const path = req.path.startsWith('/') ? req.path.slice(1) : req.path;
    for (const [g, rules] of this.#groups.entries()) {
      for (const c of rules) {
        const result = matchRule(c, req, host, path, g === 0);
        if (result === null) continue;
        if (dbg.on) dbg('%s %s://%s:%d/%s matched %s:%d', req.method, req.scheme, host, req.port, path, c.rule.file, c.rule.line);
        return result;
      }
    }
    if (dbg.on) dbg('%s %s://%s:%d/%s: no remap rule', req.method, req.scheme, host, req.port, path);
    return null;
  }
}

/** `file` as shown in diagnostics: relative to the config dir when inside it. */
function displayPath(configDir: string, abs: string): string {
  const rel = relative(configDir, abs);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

/** Tokens of each logical line (a trailing `\\` joins the next line); `#` at a token's start ends the line. */
function logicalLines(text: string): Token[][] {
  const out: Token[][] = [];
  let current: Token[] = [];
  text.split('\n').forEach((raw, index) => {
    const comment = /(?:^|\s)#/.exec(raw);
    const code = comment === null ? raw : raw.slice(0, comment.index);
    const continued = /\\\s*$/.test(code);
    const body = continued ? code.replace(/\\\s*$/, '') : code;
    for (const m of body.matchAll(/\S+/g)) current.push({ text: m[0], line: index + 1, col: (m.index ?? 0) + 1 });
    if (!continued && current.length > 0) {
      out.push(current);
      current = [];
    }
  });
  if (current.length > 0) out.push(current);
  return out;
}

class RemapParser {
  readonly #configDir: string;
  readonly diagnostics: Diagnostic[] = [];
  readonly compiled: CompiledRule[] = [];

  constructor(configDir: string) {
    this.#configDir = configDir;
  }

  #report(file: string, tok: { line: number; col: number }, message: string, severity: Diagnostic['severity'] = 'error'): void {
    this.diagnostics.push({ file, line: tok.line, col: tok.col, message, severity });
  }

  /** Parse one file's text; `stack` holds the absolute paths being included (cycle detection). */
  parseText(text: string, file: string, stack: readonly string[]): void {
    for (const tokens of logicalLines(text)) {
      const [head, ...rest] = tokens;
      if (head === undefined) continue;
      const word = head.text.toLowerCase();
      if (word === '.include') this.#include(file, head, rest, stack);
      else if (FILTER_DIRECTIVES.has(word)) {
        this.#report(file, head, `'${head.text}' is not supported yet; remap filters are ignored (not enforced)`, 'warning');
      } else if (KINDS.has(word)) this.#rule(file, word as RemapKind, head, rest);
      else if (UNSUPPORTED_KINDS.has(word)) this.#report(file, head, `'${head.text}' is not supported yet`);
      else this.#report(file, head, `unknown directive '${head.text}'`);
    }
  }

  #include(file: string, head: Token, names: readonly Token[], stack: readonly string[]): void {
    if (names.length === 0) {
      this.#report(file, head, `'.include' needs at least one file name`);
      return;
    }
    for (const name of names) {
      const abs = resolve(this.#configDir, name.text);
      let paths: string[];
      try {
        paths = statSync(abs).isDirectory()
          ? readdirSync(abs)
              .filter((n) => !n.startsWith('.'))
              .sort()
              .map((n) => join(abs, n))
              .filter((p) => statSync(p).isFile())
          : [abs];
      } catch (e) {
        this.#report(file, name, `cannot include '${name.text}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        continue;
      }
      for (const p of paths) this.#includeFile(file, name, p, stack);
    }
  }

  #includeFile(file: string, at: Token, abs: string, stack: readonly string[]): void {
    if (stack.includes(abs)) {
      const chain = [...stack, abs].map((p) => displayPath(this.#configDir, p)).join(' -> ');
      this.#report(file, at, `include cycle: ${chain}`);
      return;
    }
    if (stack.length > MAX_INCLUDE_DEPTH) {
      this.#report(file, at, `'.include' nested more than ${MAX_INCLUDE_DEPTH} deep`);
      return;
    }
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (e) {
      this.#report(file, at, `cannot include '${at.text}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      return;
    }
    this.parseText(text, displayPath(this.#configDir, abs), [...stack, abs]);
  }

  #rule(file: string, kind: RemapKind, head: Token, rest: readonly Token[]): void {
    const [fromTok, toTok, ...extra] = rest;
    if (fromTok === undefined) {
      this.#report(file, { line: head.line, col: head.col + head.text.length }, `'${kind}' needs a from-URL and a target URL`);
      return;
    }
    if (toTok === undefined || toTok.text.startsWith('@')) {
      const at = toTok ?? { line: fromTok.line, col: fromTok.col + fromTok.text.length };
      this.#report(file, at, `missing target URL after '${fromTok.text}'`);
      return;
    }
    const before = this.diagnostics.length;
    const isRegex = kind.startsWith('regex_');
    const from = parseUrl(fromTok.text, isRegex);
    if (typeof from === 'string') this.#report(file, fromTok, from);
    // Check the target with `$N` (regex captures) standing in for a host label.
    const to = parseUrl(isRegex ? toTok.text.replace(/\$\d/g, 'x') : toTok.text, false);
    if (typeof to === 'string') this.#report(file, toTok, to.replace(/'[^']*'$/, `'${toTok.text}'`));
    else if (to.host === '') this.#report(file, toTok, `the target '${toTok.text}' needs scheme://host`);
    const options = this.#options(file, extra);
    if (typeof from === 'string' || typeof to === 'string') return;
    if (from.scheme === 'ws' || from.scheme === 'wss') {
      this.#report(file, fromTok, `'${from.scheme}' rules match WebSocket upgrades, which tsproxy does not remap: this rule never matches`, 'warning');
    }
    const hostRe = isRegex ? this.#hostRegex(file, fromTok, from, toTok) : null;
    if (from.host === '' && groupOf(kind) === 0) {
      this.#report(file, fromTok, `'${kind}' needs scheme://host:port (the receiving port)`);
    }
    if (this.diagnostics.slice(before).some((d) => d.severity === 'error')) return;
    const target = isRegex ? parseUrl(toTok.text, true) : to;
    if (typeof target === 'string') return;
    this.compiled.push({
      rule: { kind, from: fromTok.text, to: toTok.text, file, line: head.line, options },
      group: groupOf(kind),
      from,
      hostRe,
      to: target,
    });
  }

  #hostRegex(file: string, fromTok: Token, from: UrlParts, toTok: Token): RegExp | null {
    if (from.host === '') {
      this.#report(file, fromTok, `regex rules need a host pattern: '${fromTok.text}'`);
      return null;
    }
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${from.host})$`, 'i');
    } catch (e) {
      this.#report(file, fromTok, `invalid host regex '${from.host}': ${(e as Error).message}`);
      return null;
    }
    const captures = captureCount(re);
    for (const m of toTok.text.matchAll(/\$(\d)/g)) {
      if (Number(m[1]) > captures) {
        this.#report(file, { line: toTok.line, col: toTok.col + (m.index ?? 0) }, `'${m[0]}' but the host regex has ${captures} capture group(s)`);
      }
    }
    return re;
  }

  #options(file: string, tokens: readonly Token[]): RemapOption[] {
    let warnedPlugin = false;
    const options: RemapOption[] = [];
    for (const tok of tokens) {
      const m = /^@([a-z_]+)(?:=(.*))?$/i.exec(tok.text);
      if (m === null) {
        this.#report(file, tok, `unexpected '${tok.text}' after the target URL (options start with '@')`);
        continue;
      }
      const name = (m[1] ?? '').toLowerCase();
      options.push({ name, value: m[2] ?? null });
      if (PLUGIN_OPTIONS.has(name)) {
        if (!warnedPlugin) this.#report(file, tok, `remap plugins are not supported yet; '@${name}' ignored (the rule maps without it)`, 'warning');
        warnedPlugin = true;
      } else if (ACL_OPTIONS.has(name)) {
        this.#report(file, tok, `remap ACL option '@${name}' is not supported yet (refused rather than ignored); use ip_allow.yaml`);
      } else if (IGNORED_OPTIONS.has(name)) {
        this.#report(file, tok, `'@${name}' is not supported; ignored`, 'warning');
      } else this.#report(file, tok, `unknown option '@${name}'`);
    }
    return options;
  }
}

/**
 * Parse remap.config. `file` is the name shown in diagnostics (relative to `configDir`);
 * `.include` names resolve against `configDir`. Rules with errors are left out of the table.
 */
export function parseRemapConfig(text: string, file: string, configDir: string): Parsed<ParsedRemapTable> {
  const parser = new RemapParser(configDir);
  parser.parseText(text, file, [resolve(configDir, file)]);
  return { value: new Table(parser.compiled), diagnostics: parser.diagnostics };
}
