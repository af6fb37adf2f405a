/**
 * A hosts file (`proxy.config.hostdb.host_file.path`, /etc/hosts format): an address then one
 * or more names per line, `#` to the end of the line is a comment. Names are case-insensitive
 * and a trailing dot is ignored. IPv6 addresses may carry a zone (`fe80::1%eth0`).
 */
import { isIP } from 'node:net';
import type { Diagnostic, HostsTable, Parsed } from './types.js';

/** Letters, digits, `-`, `_` and dots; no empty labels. */
const NAME_RE = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

interface Field {
  readonly text: string;
  readonly col: number;
}

function fieldsOf(line: string): Field[] {
  const hash = line.indexOf('#');
  const body = hash >= 0 ? line.slice(0, hash) : line;
  return [...body.matchAll(/[^ \t\r\v\f]+/g)].map((m) => ({ text: m[0], col: (m.index ?? 0) + 1 }));
}

/** Lower-case and drop one trailing dot. */
function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

export function parseHostsFile(text: string, file: string): Parsed<HostsTable> {
  const diagnostics: Diagnostic[] = [];
  const table = new Map<string, string[]>();
  const report = (severity: Diagnostic['severity'], line: number, col: number, message: string): void => {
    diagnostics.push({ file, line, col, message, severity });
  };
  text.split('\n').forEach((line, index) => {
    const lineNo = index + 1;
    const [addr, ...names] = fieldsOf(line);
    if (addr === undefined) return;
    if (isIP(addr.text) === 0) {
      report('error', lineNo, addr.col, `invalid address '${addr.text}'`);
      return;
    }
    if (names.length === 0) {
      report('warning', lineNo, addr.col, `address '${addr.text}' has no host names; line ignored`);
      return;
    }
    for (const n of names) {
      const name = normalizeName(n.text);
      if (!NAME_RE.test(name)) {
        report('error', lineNo, n.col, `invalid host name '${n.text}'`);
        continue;
      }
      const addrs = table.get(name) ?? [];
      if (!addrs.includes(addr.text)) addrs.push(addr.text);
      table.set(name, addrs);
    }
  });
  return {
    value: { lookup: (name: string): readonly string[] => table.get(normalizeName(name)) ?? [] },
    diagnostics,
  };
}
