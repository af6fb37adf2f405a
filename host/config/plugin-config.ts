/**
 * plugin.config: one plugin per line, `path args...`, in load order.
 *
 * Grammar (ATS's): leading whitespace is skipped; empty lines and lines starting with `#` are
 * skipped; tokens are separated by whitespace; a token STARTING with `"` runs to the next `"`
 * (no escapes) and loses its quotes; `#` outside quotes ends the line; an argument that is a
 * whole `$record.name` token becomes that record's value.
 *
 * Differences from ATS, on purpose:
 * - ATS stops at `#` inside a token but keeps the `#...` text in the argument (`arg#x` gives
 *   `arg#x` and drops the rest of the line); here `#` ends the token too, so `arg#x` gives `arg`.
 * - An unterminated quote is an error here; ATS takes the rest of the line as the argument.
 * - ATS leaves an unknown `$name` as written; here it is an error.
 * - ATS truncates over-long lines and extra arguments silently; here both are errors.
 */
import type { Diagnostic, Parsed, PluginLine } from './types.js';

/** ATS reads plugin.config lines into a 1024-byte buffer (1023 characters plus NUL). */
export const MAX_PLUGIN_LINE = 1023;
/** ATS's MAX_PLUGIN_ARGS: the size of argv, which includes the plugin path (argv[0]). */
export const MAX_PLUGIN_ARGS = 64;

export interface PluginToken {
  readonly text: string;
  /** 1-based column of the token's first character (the opening quote when quoted). */
  readonly col: number;
}

export interface TokenizeResult {
  readonly tokens: PluginToken[];
  readonly error?: { readonly col: number; readonly message: string };
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\v' || c === '\f';
}

/** Split one plugin.config line into tokens. Never throws; stops at the first error. */
export function tokenizePluginLine(line: string): TokenizeResult {
  const tokens: PluginToken[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line.charAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === '#') break;
    if (c === '"') {
      const close = line.indexOf('"', i + 1);
      if (close < 0) return { tokens, error: { col: i + 1, message: 'unterminated quote' } };
      tokens.push({ text: line.slice(i + 1, close), col: i + 1 });
      // As in ATS, text right after the closing quote (`"a b"c`) starts the next token.
      i = close + 1;
      continue;
    }
    const start = i;
    while (i < line.length && !isSpace(line.charAt(i)) && line.charAt(i) !== '#') i++;
    tokens.push({ text: line.slice(start, i), col: start + 1 });
  }
  return { tokens };
}

/**
 * Parse plugin.config text. `records` supplies `$record.name` expansions (every known record).
 * Lines with an error produce no PluginLine.
 */
export function parsePluginConfig(
  text: string,
  file: string,
  records: ReadonlyMap<string, string | number>,
): Parsed<PluginLine[]> {
  const diagnostics: Diagnostic[] = [];
  const plugins: PluginLine[] = [];
  const error = (line: number, col: number, message: string): void => {
    diagnostics.push({ file, line, col, message, severity: 'error' });
  };
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length > MAX_PLUGIN_LINE) {
      error(lineNo, MAX_PLUGIN_LINE + 1, `line is longer than ${MAX_PLUGIN_LINE} characters`);
      return;
    }
    const { tokens, error: tokError } = tokenizePluginLine(line);
    if (tokError !== undefined) {
      error(lineNo, tokError.col, tokError.message);
      return;
    }
    const [first, ...rest] = tokens;
    if (first === undefined) return;
    if (tokens.length > MAX_PLUGIN_ARGS) {
      const extra = tokens[MAX_PLUGIN_ARGS];
      error(lineNo, extra?.col ?? 1, `too many arguments: ${tokens.length - 1} (at most ${MAX_PLUGIN_ARGS - 1} after the plugin path)`);
      return;
    }
    let ok = true;
    const args = rest.map((tok) => {
      if (!tok.text.startsWith('$')) return tok.text;
      const name = tok.text.slice(1);
      const value = records.get(name);
      if (value === undefined) {
        error(lineNo, tok.col, `unknown record '${name}' in '${tok.text}'`);
        ok = false;
        return tok.text;
      }
      return String(value);
    });
    if (ok) plugins.push({ file, line: lineNo, name: first.text, args, cols: tokens.map((t) => t.col) });
  });
  return { value: plugins, diagnostics };
}
