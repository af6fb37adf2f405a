/**
 * ssl_multicert.config: one server certificate per line as `key=value` fields separated by
 * whitespace; a value may be double-quoted (no escapes); a field starting with `#` begins a comment.
 *
 * - `ssl_cert_name` is required. ATS accepts a comma list of chains (e.g. RSA and ECDSA); tsproxy
 *   uses the first and warns.
 * - `ssl_key_name` defaults to the certificate file (the key is in the same PEM), as in ATS.
 * - `dest_ip` is `*` (the default when absent) or an IPv4/IPv6 address.
 * - Keys ATS knows that tsproxy does not use are accepted with a warning. A line with
 *   `action=tunnel` is skipped with a warning (no certificate is served for it).
 * - Keys are matched case-insensitively (ATS uses strcasecmp); unknown keys are errors.
 */
import { resolve } from 'node:path';
import { parseIp } from './ip-range.js';
import type { Diagnostic, Parsed, SslCertEntry } from './types.js';

const KNOWN_KEYS = new Set(['dest_ip', 'ssl_cert_name', 'ssl_key_name']);
const UNUSED_KEYS = new Set([
  'ssl_ca_name',
  'ssl_ocsp_name',
  'ssl_key_dialog',
  'dest_fqdn',
  'ssl_ticket_enabled',
  'ssl_ticket_number',
  'ticket_key_name',
  'action',
]);

interface Field {
  readonly key: string;
  readonly value: string;
  readonly col: number;
  readonly valueCol: number;
}

type Report = (severity: Diagnostic['severity'], col: number, message: string) => void;

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\v' || c === '\f';
}

/** Split a line into key=value fields; problems go to `report`. */
function fieldsOf(line: string, report: Report): Field[] {
  const fields: Field[] = [];
  let i = 0;
  const skipToken = (): void => {
    while (i < line.length && !isSpace(line.charAt(i))) i++;
  };
  while (i < line.length) {
    if (isSpace(line.charAt(i))) {
      i++;
      continue;
    }
    if (line.charAt(i) === '#') break;
    const start = i;
    while (i < line.length && !isSpace(line.charAt(i)) && line.charAt(i) !== '=') i++;
    const key = line.slice(start, i);
    if (line.charAt(i) !== '=' || key === '') {
      skipToken();
      report('error', start + 1, `expected key=value, found '${line.slice(start, i)}'`);
      continue;
    }
    i++;
    const valueStart = i;
    let value: string;
    if (line.charAt(i) === '"') {
      const close = line.indexOf('"', i + 1);
      if (close < 0) {
        report('error', i + 1, `unterminated quote in the value of '${key}'`);
        break;
      }
      value = line.slice(i + 1, close);
      i = close + 1;
    } else {
      skipToken();
      value = line.slice(valueStart, i);
    }
    fields.push({ key: key.toLowerCase(), value, col: start + 1, valueCol: valueStart + 1 });
  }
  return fields;
}

function firstOfList(f: Field, report: Report): string {
  const names = f.value.split(',').map((s) => s.trim());
  if (names.length > 1) {
    report('warning', f.valueCol, `'${f.key}' lists ${names.length} files; tsproxy uses only the first ('${names[0]}')`);
  }
  return names[0] ?? '';
}

export function parseSslMulticert(text: string, file: string, certDir: string, keyDir: string): Parsed<SslCertEntry[]> {
  const diagnostics: Diagnostic[] = [];
  const entries: SslCertEntry[] = [];
  text.split('\n').forEach((line, index) => {
    const lineNo = index + 1;
    const before = diagnostics.length;
    const report: Report = (severity, col, message) => {
      diagnostics.push({ file, line: lineNo, col, message, severity });
    };
    const fields = fieldsOf(line, report);
    if (fields.length === 0) return;
    const byKey = new Map<string, Field>();
    for (const f of fields) {
      if (byKey.has(f.key)) report('error', f.col, `duplicate key '${f.key}'`);
      else if (KNOWN_KEYS.has(f.key)) byKey.set(f.key, f);
      else if (UNUSED_KEYS.has(f.key)) {
        byKey.set(f.key, f);
        report('warning', f.col, `'${f.key}' is not used by tsproxy; ignored`);
      } else report('error', f.col, `unknown key '${f.key}'`);
      if (f.value === '') report('error', f.valueCol, `empty value for '${f.key}'`);
    }
    const action = byKey.get('action');
    if (action !== undefined && action.value.toLowerCase() === 'tunnel') {
      report('warning', action.col, `'action=tunnel' is not supported; line skipped`);
      return;
    }
    const destField = byKey.get('dest_ip');
    if (destField !== undefined && destField.value !== '*' && destField.value !== '' && parseIp(destField.value) === null) {
      report('error', destField.valueCol, `invalid dest_ip '${destField.value}' (expected * or an IP address)`);
    }
    const certField = byKey.get('ssl_cert_name');
    if (certField === undefined) {
      report('error', fields[0]?.col ?? 1, `missing 'ssl_cert_name'`);
      return;
    }
    const keyField = byKey.get('ssl_key_name');
    const certFile = resolve(certDir, firstOfList(certField, report));
    const keyFile = keyField === undefined ? certFile : resolve(keyDir, firstOfList(keyField, report));
    if (diagnostics.slice(before).some((d) => d.severity === 'error')) return;
    const destIp = destField === undefined ? '*' : destField.value.replace(/^\[(.*)\]$/, '$1');
    entries.push({ destIp, certFile, keyFile, file, line: lineNo });
  });
  return { value: entries, diagnostics };
}
