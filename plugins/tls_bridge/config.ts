/**
 * tls_bridge arguments: `regex peer` pairs and `--file F` options, in one ordered rule list.
 *
 * As ATS's tls_bridge.cc (`TSPluginInit`), with the fixes tsproxy decided on:
 * - a regex matches the WHOLE host name (`^(?:rx)$`), case-insensitively; ATS anchors only the start;
 * - in a `--file` line, whitespace then `#` after the peer starts a comment;
 * - an unknown option, `--file` without a name, an unreadable file, a regex without a peer, a regex
 *   that does not compile, or a peer that is not `host[:port]` is an error naming the file, line and
 *   column (plugin.config's for arguments, the bridge file's for its lines), all reported at once.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { PluginDiagnostic, PluginVerifyContext } from '../../host/api/index.js';
import { TlsBridgeErrorCode, bridgeMessage, type TlsBridgeErrorCodeT } from './errors.js';

export const FILE_OPTION = '--file';
/** plugin.config in the config directory, for diagnostics when the host gives no location. */
export const PLUGIN_CONFIG_NAME = 'plugin.config';

/** One `regex peer` mapping, where it was written. */
export interface BridgeRule {
  /** The regular expression as written. */
  readonly pattern: string;
  /** `^(?:pattern)$`, case-insensitive. */
  readonly regex: RegExp;
  /** `host[:port]` of the peer proxy. */
  readonly peer: string;
  readonly file: string;
  readonly line: number;
}

/** A problem in the arguments or a bridge file, with tls_bridge's code. */
export interface BridgeDiagnostic extends PluginDiagnostic {
  readonly code: TlsBridgeErrorCodeT;
}

/** The rules, in order; the first whose regex matches the host wins. */
export class BridgeConfig {
  readonly rules: readonly BridgeRule[];

  constructor(rules: readonly BridgeRule[]) {
    this.rules = rules;
  }

  /** The first rule matching `host` (one trailing dot ignored), or null. */
  match(host: string): BridgeRule | null {
    const name = host.endsWith('.') ? host.slice(0, -1) : host;
    return this.rules.find((r) => r.regex.test(name)) ?? null;
  }
}

export interface ParsedBridgeConfig {
  readonly config: BridgeConfig;
  readonly diagnostics: BridgeDiagnostic[];
}

/** Reads a file as UTF-8 (injectable for tests of unreadable files; the default reads the disk). */
export type ReadText = (path: string) => string;
const readText: ReadText = (path) => readFileSync(path, 'utf8');

const PEER_HOST_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const PEER_HOST_NAME = new RegExp(`^${PEER_HOST_LABEL}(?:\\.${PEER_HOST_LABEL})*\\.?$`);
const PEER_RE = /^(?:\[([^\]]*)\]|([^:[\]]+))(?::(\d{1,5}))?$/;
/** Options start with `-`; en and em dashes catch `–file` pasted from the ATS docs. */
const OPTION_RE = /^[-\u2013\u2014]/;
const OPTION_PREFIX_RE = /^[-\u2013\u2014]+/;

/** True if `text` is `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address. */
export function isValidPeer(text: string): boolean {
  const m = PEER_RE.exec(text);
  if (m === null) return false;
  const [, v6, name, port] = m;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  if (v6 !== undefined) return isIPv6(v6);
  return name !== undefined && (isIPv4(name) || PEER_HOST_NAME.test(name));
}

/** Compile a rule's regex anchored at both ends, or return the compiler's message. */
export function compileRule(pattern: string): RegExp | string {
  try {
    // Compiled alone first, so a pattern like `a)|(b` cannot break out of the anchoring group.
    new RegExp(pattern);
    return new RegExp(`^(?:${pattern})$`, 'i');
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** One token of a plugin.config line: its text (quotes removed) and 1-based column. */
export interface LineToken {
  readonly text: string;
  readonly col: number;
}

/**
 * Split a plugin.config line as the host's plugin.config reader does: whitespace-separated tokens,
 * a token starting with `"` runs to the next `"` and loses its quotes, `#` outside quotes ends the line.
 */
export function pluginLineTokens(line: string): LineToken[] {
  const tokens: LineToken[] = [];
  const re = /"([^"]*)"?|([^\s#"][^\s#]*)|#/g;
  for (let m = re.exec(line); m !== null && m[0] !== '#'; m = re.exec(line)) {
    tokens.push({ text: m[1] ?? m[2] ?? '', col: m.index + 1 });
  }
  return tokens;
}

/** Collects rules and diagnostics while walking arguments and files. */
class RuleCollector {
  readonly rules: BridgeRule[] = [];
  readonly diagnostics: BridgeDiagnostic[] = [];

  error(file: string, line: number, col: number, code: TlsBridgeErrorCodeT, ...args: unknown[]): void {
    this.diagnostics.push({ file, line, col, code, severity: 'error', message: bridgeMessage(code, ...args) });
  }

  /** Add `pattern peer` if both are valid; `cols` are the columns of the pattern and the peer. */
  add(pattern: string, peer: string, file: string, line: number, cols: readonly [number, number]): void {
    const regex = compileRule(pattern);
    const peerOk = isValidPeer(peer);
    if (typeof regex === 'string') this.error(file, line, cols[0], TlsBridgeErrorCode.BAD_REGEX, pattern, regex);
    if (!peerOk) this.error(file, line, cols[1], TlsBridgeErrorCode.BAD_PEER, peer, pattern);
    if (typeof regex !== 'string' && peerOk) this.rules.push({ pattern, regex, peer, file, line });
  }
}

/**
 * Parse one bridge file's text: `regex peer` per line. Leading whitespace is ignored; blank lines
 * and lines starting with `#` are skipped; whitespace then `#` after the peer starts a comment.
 */
export function parseBridgeFile(text: string, file: string): ParsedBridgeConfig {
  const out = collectFile(text, file, new RuleCollector());
  return { config: new BridgeConfig(out.rules), diagnostics: out.diagnostics };
}

function collectFile(text: string, file: string, into: RuleCollector): RuleCollector {
  const LINE_RE = /^(\s*)(\S+)(?:(\s+)(\S+))?(?:\s+(.*?))?\s*$/;
  text.split('\n').forEach((raw, index) => {
    const lineNo = index + 1;
    const m = LINE_RE.exec(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    if (m === null) return; // blank
    const [, lead = '', pattern = '', gap = '', peer, rest] = m;
    if (pattern.startsWith('#')) return;
    const col = lead.length + 1;
    if (peer === undefined || peer.startsWith('#')) {
      into.error(file, lineNo, col, TlsBridgeErrorCode.NO_PEER, pattern);
      return;
    }
    const peerCol = col + pattern.length + gap.length;
    if (rest !== undefined && rest !== '' && !rest.startsWith('#')) {
      const restCol = raw.indexOf(rest, peerCol - 1 + peer.length) + 1;
      into.error(file, lineNo, restCol, TlsBridgeErrorCode.TRAILING_TEXT, rest.replace(/\s+#.*$/, ''), peer);
      return;
    }
    into.add(pattern, peer, file, lineNo, [col, peerCol]);
  });
  return into;
}

/**
 * Parse the plugin's arguments (`args[0]` is the plugin name, as ATS's argv[0]). Relative `--file`
 * names are resolved against `ctx.configDir`. Never throws: every problem is a diagnostic.
 */
export function parseBridgeArgs(
  ctx: PluginVerifyContext,
  args: readonly string[],
  read: ReadText = readText,
): ParsedBridgeConfig {
  const out = new RuleCollector();
  const cols = argColumns(ctx, read);
  const colOf = (i: number): number => cols[i] ?? 1;
  const err = (i: number, code: TlsBridgeErrorCodeT, ...a: unknown[]): void =>
    out.error(ctx.file, ctx.line, colOf(i), code, ...a);
  const isOption = (i: number): boolean => OPTION_RE.test(args[i] ?? '');

  let i = 1;
  while (i < args.length) {
    const arg = args[i] ?? '';
    if (arg === FILE_OPTION) {
      const name = args[i + 1];
      if (name === undefined || isOption(i + 1)) {
        err(i, TlsBridgeErrorCode.NO_FILE_NAME);
        i += 1;
        continue;
      }
      const path = isAbsolute(name) ? name : resolve(ctx.configDir, name);
      let text: string | null = null;
      try {
        text = read(path);
      } catch (e) {
        err(i + 1, TlsBridgeErrorCode.FILE_UNREADABLE, path, e instanceof Error ? e.message : String(e));
      }
      if (text !== null) collectFile(text, path, out);
      i += 2;
    } else if (isOption(i)) {
      const hint = arg.replace(OPTION_PREFIX_RE, '').startsWith('file') ? ` (did you mean '${FILE_OPTION}'?)` : '';
      err(i, TlsBridgeErrorCode.UNKNOWN_OPTION, arg, hint);
      i += 1;
    } else if (i + 1 >= args.length || isOption(i + 1)) {
      err(i, TlsBridgeErrorCode.NO_PEER, arg);
      i += 1;
    } else {
      out.add(arg, args[i + 1] ?? '', ctx.file, ctx.line, [colOf(i), colOf(i + 1)]);
      i += 2;
    }
  }
  return { config: new BridgeConfig(out.rules), diagnostics: out.diagnostics };
}

/** Columns of `args` on the plugin.config line that named the plugin (1s if it cannot be read). */
function argColumns(ctx: PluginVerifyContext, read: ReadText): readonly number[] {
  if (ctx.cols !== undefined) return ctx.cols;
  try {
    return pluginLineTokens(read(ctx.file).split('\n')[ctx.line - 1] ?? '').map((t) => t.col);
  } catch {
    return [];
  }
}
