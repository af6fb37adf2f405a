/**
 * Legacy records.config (ATS 9 and earlier): `CONFIG name TYPE value`, one record a line.
 *
 * `LOCAL` may stand for `CONFIG`; types are INT, STRING, FLOAT and COUNTER; the value runs to
 * the end of the line (no quoting); `STRING NULL` is the empty string, as in ATS; a line whose
 * first non-blank character is `#` is a comment. Unlike ATS, ` #` after the value also starts a
 * comment (ATS reads `INT 0 # off` as 0 by accident and would keep the text in a STRING), and a
 * value that is not of its declared type, or a type that differs from the known record's, is an
 * error at the line instead of a record silently left at its default.
 */
import { RENAMED_RECORDS, parseAtsInt, recordInfo, type RecordEntry } from './records-schema.js';
import type { Diagnostic, Parsed } from './types.js';

const TYPES = new Set(['INT', 'STRING', 'FLOAT', 'COUNTER']);

/** Parse records.config text into record entries (names as ATS spells them, renamed ones updated). */
export function parseRecordsConfig(text: string, file: string): Parsed<Map<string, RecordEntry>> {
  const diagnostics: Diagnostic[] = [];
  const entries = new Map<string, RecordEntry>();
  const error = (line: number, col: number, message: string): void => {
    diagnostics.push({ file, line, col, message, severity: 'error' });
  };
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const src = raw.replace(/\r$/, '');
    const tokens = [...src.matchAll(/\S+/g)].slice(0, 3);
    const [kind, nameTok, typeTok] = tokens;
    if (!kind || kind[0].startsWith('#')) return;
    const col = (t: RegExpExecArray | RegExpMatchArray): number => (t.index ?? 0) + 1;
    if (kind[0] !== 'CONFIG' && kind[0] !== 'LOCAL') {
      error(line, col(kind), `expected CONFIG or LOCAL at the start of the line, got '${kind[0]}'`);
      return;
    }
    if (!nameTok || !typeTok) {
      error(line, src.length + 1, nameTok ? `record ${nameTok[0]} has no type` : 'missing record name');
      return;
    }
    const name = RENAMED_RECORDS.get(nameTok[0]) ?? nameTok[0];
    const type = typeTok[0];
    if (!TYPES.has(type)) {
      error(line, col(typeTok), `record ${name}: unknown type '${type}' (expected INT, STRING, FLOAT or COUNTER)`);
      return;
    }
    const afterType = col(typeTok) - 1 + type.length;
    const rest = src.slice(afterType);
    const valueText = rest.replace(/\s+#.*$/, '').trim();
    const valueCol = valueText ? afterType + rest.indexOf(valueText) + 1 : afterType + 1;
    const known = recordInfo(name);
    const asInt = type === 'INT' || type === 'COUNTER';
    if (known && (known.type === 'INT') !== asInt) {
      error(line, col(typeTok), `${name} is ${known.type === 'INT' ? 'an INT' : 'a STRING'} record, not ${type}`);
      return;
    }
    let value: string | number;
    if (type === 'STRING') value = valueText === 'NULL' ? '' : valueText;
    else {
      const n = asInt ? parseAtsInt(valueText) : valueText === '' ? null : Number(valueText);
      if (n === null || Number.isNaN(n)) {
        error(line, valueCol, `${name}: ${type} value '${valueText}' is not ${asInt ? 'an integer' : 'a number'}`);
        return;
      }
      value = n;
    }
    const prev = entries.get(name);
    if (prev) {
      diagnostics.push({
        file,
        line,
        col: col(nameTok),
        message: `${name} is set again (first at line ${prev.keyLine}); the last one wins`,
        severity: 'warning',
      });
    }
    entries.set(name, { value, line, col: valueCol, keyLine: line, keyCol: col(nameTok) });
  });
  return { value: entries, diagnostics };
}
