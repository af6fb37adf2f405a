/**
 * Records: records.yaml (ATS 10 nested form) or legacy records.config, then `PROXY_CONFIG_*`
 * environment overrides, validated against the one schema (records-schema.ts), into a typed
 * RecordsConfig. Every problem is a Diagnostic at file:line:col; an unknown record is a warning
 * that suggests the closest known name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import type { Document, YAMLMap } from 'yaml';
import { diags } from '../diags.js';
import { parseServerPorts, parseConnectPorts, type ValuePosition } from './ports.js';
import { parseRecordsConfig } from './records-legacy.js';
import {
  RECORDS,
  RECORD_NAMES,
  RENAMED_RECORDS,
  coerceRecordValue,
  recordInfo,
  recordRange,
  type RecordEntry,
} from './records-schema.js';
import { validate as validateRecords } from './records-validate.js';
import { closestName } from './suggest.js';
import { withYaml } from '../api/yaml.js';
import type { Diagnostic, Parsed, RecordsConfig, VerifyServerPolicy, VerifyServerProperties } from './types.js';

export { parseRecordsConfig };
export type { RecordEntry };

const dbg = diags.dbgCtl('records');

/** Validate `{ name: coercedValue }` against the schema; ajv's errors (empty when valid). */
export function schemaErrors(values: Readonly<Record<string, unknown>>): ErrorObject[] {
  return validateRecords(values) ? [] : [...(validateRecords.errors ?? [])];
}

/** The file name used in diagnostics about environment overrides. */
export const ENV_FILE = 'env';

/** `proxy.config.http.cache.http` → `PROXY_CONFIG_HTTP_CACHE_HTTP`. */
export function recordEnvName(name: string): string {
  return name.toUpperCase().replace(/\./g, '_');
}

/** Every accepted variable and its record. `_` is ambiguous, so match each known name's form. */
const ENV_RECORDS: ReadonlyMap<string, string> = new Map([
  ...[...RENAMED_RECORDS].map(([old, now]) => [recordEnvName(old), now] as const),
  ...RECORD_NAMES.map((n) => [recordEnvName(n), n] as const),
]);

// ---------------------------------------------------------------- records.yaml

/** Parse records.yaml text (one or more documents; later ones override earlier ones). */
export function parseRecordsYaml(text: string, file: string): Parsed<Map<string, RecordEntry>> {
  return withYaml(({ LineCounter, isMap, isNode, isScalar, parseAllDocuments }) => {
    const diagnostics: Diagnostic[] = [];
    const entries = new Map<string, RecordEntry>();
    const lineCounter = new LineCounter();
    const at = (offset: number): { line: number; col: number } => lineCounter.linePos(offset);
    const report = (offset: number, message: string, severity: Diagnostic['severity']): void => {
      diagnostics.push({ file, ...at(offset), message, severity });
    };

    const walk = (doc: Document, map: YAMLMap, prefix: string, inDoc: Set<string>): void => {
      for (const pair of map.items) {
        const { key, value } = pair;
        if (!isScalar(key) || key.value === null || typeof key.value === 'object') {
          report(isNode(key) ? (key.range?.[0] ?? 0) : (map.range?.[0] ?? 0), `a record key must be a name (under ${prefix})`, 'error');
          continue;
        }
        const keyOffset = key.range?.[0] ?? 0;
        const written = prefix + String(key.value);
        if (isMap(value)) {
          walk(doc, value, `${written}.`, inDoc);
          continue;
        }
        const name = RENAMED_RECORDS.get(written) ?? written;
        if (name !== written) report(keyOffset, `${written} is named ${name} since ATS 10; using it`, 'warning');
        if (inDoc.has(name)) report(keyOffset, `${name} is set twice in this document; the last one wins`, 'warning');
        inDoc.add(name);
        let valueOffset = keyOffset;
        if (isScalar(value) && value.range) {
          const quoted = value.type === 'QUOTE_DOUBLE' || value.type === 'QUOTE_SINGLE';
          valueOffset = value.range[0] + (quoted ? 1 : 0);
        } else if (isNode(value) && value.range) valueOffset = value.range[0];
        const v: unknown = isScalar(value) ? value.value : isNode(value) ? value.toJS(doc) : null;
        entries.set(name, { value: v, ...at(valueOffset), keyLine: at(keyOffset).line, keyCol: at(keyOffset).col });
      }
    };

    for (const doc of parseAllDocuments(text, { lineCounter, prettyErrors: false })) {
      for (const e of doc.errors) report(e.pos[0], `YAML syntax error: ${e.message}`, 'error');
      for (const w of doc.warnings) report(w.pos[0], `YAML: ${w.message}`, 'warning');
      const root = doc.contents;
      if (doc.errors.length > 0 || root === null || (isScalar(root) && root.value === null)) continue;
      if (!isMap(root)) {
        report(root.range?.[0] ?? 0, "the top level must be a map with a 'records' key", 'error');
        continue;
      }
      let found = false;
      for (const { key, value } of root.items) {
        const keyOffset = isNode(key) ? (key.range?.[0] ?? 0) : 0;
        if (!isScalar(key) || key.value !== 'records') {
          report(keyOffset, `unknown top-level key '${isScalar(key) ? String(key.value) : '?'}' (expected 'records'); ignored`, 'warning');
          continue;
        }
        found = true;
        if (isMap(value)) walk(doc, value, 'proxy.config.', new Set());
        else if (!(value === null || (isScalar(value) && value.value === null))) {
          report(isNode(value) ? (value.range?.[0] ?? keyOffset) : keyOffset, "'records' must be a map of records", 'error');
        }
      }
      if (!found) report(root.range?.[0] ?? 0, "no 'records' key at the top level", 'error');
    }
    return { value: entries, diagnostics };
  });
}

// ---------------------------------------------------------------- validation

/** Where a value came from: a file position, or an environment variable. */
type Origin = { readonly kind: 'file'; readonly file: string; readonly entry: RecordEntry } | { readonly kind: 'env'; readonly variable: string };

function show(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v);
}

/** A schema error as a message naming the record. */
function describe(name: string, err: ErrorObject, value: unknown): string {
  const schema = recordInfo(name)?.schema;
  switch (err.keyword) {
    case 'type':
      return `${name} must be ${err.params['type'] === 'integer' ? 'an integer' : 'a string'}, got ${show(value)}`;
    case 'const':
      return schema?.['x-error'] ?? `${name} must be ${show(schema?.const)}, got ${show(value)}`;
    case 'enum':
      return `${name} must be one of ${schema ? recordRange(schema) : '?'}; got ${show(value)}`;
    case 'minimum':
    case 'maximum': {
      const range = schema ? recordRange(schema) : '';
      return `${name} must be ${range.includes('..') ? `in ${range}` : range}, got ${show(value)}`;
    }
    default:
      return `${name} ${err.message ?? 'is invalid'}`;
  }
}

function unknownRecordMessage(name: string): string {
  const guess = closestName(name, RECORD_NAMES);
  return guess ? `unknown record '${name}'; did you mean '${guess}'?` : `unknown record '${name}' (not used by tsproxy); ignored`;
}

/** Translate a diagnostic about a value to where the value came from. */
function relocate(d: Diagnostic, name: string, origin: Origin): Diagnostic {
  if (origin.kind === 'env') return { ...d, file: ENV_FILE, line: 0, col: 0, message: `${origin.variable}: ${d.message}` };
  return { ...d, message: `${name}: ${d.message}` };
}

const DEFAULT_POSITION: ValuePosition = { file: 'default', line: 0, col: 0 };

interface Validated {
  readonly values: Map<string, string | number>;
  readonly origins: Map<string, Origin>;
}

/** Merge file entries and env overrides, validate against the schema, keep valid values. */
function validate(file: string, entries: ReadonlyMap<string, RecordEntry>, env: NodeJS.ProcessEnv, diagnostics: Diagnostic[]): Validated {
  const raw: Record<string, unknown> = {};
  const origins = new Map<string, Origin>();
  for (const [name, entry] of entries) {
    raw[name] = coerceRecordValue(name, entry.value);
    origins.set(name, { kind: 'file', file, entry });
  }
  for (const [variable, text] of Object.entries(env)) {
    if (text === undefined || !variable.startsWith('PROXY_CONFIG_')) continue;
    const name = ENV_RECORDS.get(variable);
    if (!name) {
      const guess = closestName(variable, ENV_RECORDS.keys());
      const message = `unknown record variable ${variable}${guess ? `; did you mean ${guess}?` : ' (not used by tsproxy); ignored'}`;
      diagnostics.push({ file: ENV_FILE, line: 0, col: 0, message, severity: 'warning' });
      continue;
    }
    dbg('%s overrides %s with %s', variable, name, text);
    raw[name] = coerceRecordValue(name, text);
    origins.set(name, { kind: 'env', variable });
  }

  const bad = new Set<string>();
  for (const err of schemaErrors(raw)) {
    const unknown = err.keyword === 'additionalProperties';
    const name = unknown ? String(err.params['additionalProperty']) : err.instancePath.slice(1).replace(/~1/g, '/').replace(/~0/g, '~');
    const origin = origins.get(name);
    if (bad.has(name) || !origin) continue;
    bad.add(name);
    const message = unknown ? unknownRecordMessage(name) : describe(name, err, raw[name]);
    const pos = origin.kind === 'file' ? (unknown ? { line: origin.entry.keyLine, col: origin.entry.keyCol } : origin.entry) : { line: 0, col: 0 };
    const base: Diagnostic = { file, line: pos.line, col: pos.col, message, severity: unknown ? 'warning' : 'error' };
    diagnostics.push(origin.kind === 'env' ? relocate(base, name, origin) : base);
  }

  const values = new Map<string, string | number>();
  for (const r of RECORDS) {
    const v = raw[r.name];
    values.set(r.name, r.name in raw && !bad.has(r.name) ? (v as string | number) : r.default);
  }
  return { values, origins };
}

// ---------------------------------------------------------------- typed config

function build(configDir: string, v: Validated, diagnostics: Diagnostic[]): RecordsConfig {
  const str = (name: string): string => String(v.values.get(name));
  const int = (name: string): number => Number(v.values.get(name));
  const parseAt = <T>(name: string, parse: (text: string, where: ValuePosition) => Parsed<T>): T => {
    const origin = v.origins.get(name);
    const where = origin?.kind === 'file' ? { file: origin.file, line: origin.entry.line, col: origin.entry.col } : DEFAULT_POSITION;
    const parsed = parse(str(name), where);
    for (const d of parsed.diagnostics) diagnostics.push(origin ? relocate(d, name, origin) : d);
    return parsed.value;
  };
  const dirOrNull = (p: string): string | null => (p === '' ? null : resolve(configDir, p));
  /** `path` joined with `filename` (an absolute filename stands alone); null without a filename. */
  const certFile = (prefix: string): string | null => {
    const file = str(`${prefix}.filename`);
    return file ? resolve(configDir, str(`${prefix}.path`), file) : null;
  };
  /** A CA: the file when a filename is set, else the directory, else null. */
  const ca = (prefix: string): string | null => certFile(prefix) ?? dirOrNull(str(`${prefix}.path`));
  return {
    values: v.values,
    serverPorts: parseAt('proxy.config.http.server_ports', parseServerPorts),
    connectPorts: parseAt('proxy.config.http.connect_ports', parseConnectPorts),
    remapRequired: int('proxy.config.url_remap.remap_required') === 1,
    hostFilePath: dirOrNull(str('proxy.config.hostdb.host_file.path')),
    debugEnabled: int('proxy.config.diags.debug.enabled') as 0 | 1 | 2,
    debugTags: str('proxy.config.diags.debug.tags'),
    ssl: {
      serverCertDir: resolve(configDir, str('proxy.config.ssl.server.cert.path')),
      serverKeyDir: resolve(configDir, str('proxy.config.ssl.server.private_key.path')),
      clientCaForInbound: ca('proxy.config.ssl.CA.cert'),
      certificationLevel: int('proxy.config.ssl.client.certification_level') as 0 | 1 | 2,
      verifyServerPolicy: str('proxy.config.ssl.client.verify.server.policy') as VerifyServerPolicy,
      verifyServerProperties: str('proxy.config.ssl.client.verify.server.properties') as VerifyServerProperties,
      clientCa: ca('proxy.config.ssl.client.CA.cert'),
      clientCert: certFile('proxy.config.ssl.client.cert'),
      clientKey: certFile('proxy.config.ssl.client.private_key'),
      originSessionCacheSize: int('proxy.config.ssl.origin_session_cache.enabled') === 1 ? int('proxy.config.ssl.origin_session_cache.size') : 0,
    },
    prewarm:
      int('proxy.config.tunnel.prewarm.enabled') === 1
        ? { min: int('proxy.config.tunnel.prewarm.min'), inactiveTimeoutMs: int('proxy.config.tunnel.prewarm.inactive_timeout') * 1000 }
        : null,
    handshakeTimeoutIn: int('proxy.config.ssl.handshake_timeout_in'),
    connectAttemptsTimeout: int('proxy.config.http.connect_attempts_timeout'),
    noActivityTimeoutIn: int('proxy.config.http.transaction_no_activity_timeout_in'),
    noActivityTimeoutOut: int('proxy.config.http.transaction_no_activity_timeout_out'),
    connectionsThrottle: int('proxy.config.net.connections_throttle'),
    requestHeaderMaxSize: int('proxy.config.http.request_header_max_size'),
    pluginDir: resolve(configDir, str('proxy.config.plugin.plugin_dir')),
    execThread: { autoconfig: int('proxy.config.exec_thread.autoconfig.enabled') === 1, limit: int('proxy.config.exec_thread.limit') },
  };
}

// ---------------------------------------------------------------- load

function readText(file: string, diagnostics: Diagnostic[]): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    diagnostics.push({ file, line: 1, col: 1, message: `cannot read: ${(e as Error).message}`, severity: 'error' });
    return null;
  }
}

/**
 * Load the records of `configDir`: records.yaml, else records.config, else all defaults; then
 * `PROXY_CONFIG_*` overrides from `env`. Relative paths resolve against `configDir`.
 */
export function loadRecords(configDir: string, env: NodeJS.ProcessEnv = process.env): Parsed<RecordsConfig> {
  const diagnostics: Diagnostic[] = [];
  const yamlFile = join(configDir, 'records.yaml');
  const legacyFile = join(configDir, 'records.config');
  const useYaml = existsSync(yamlFile);
  if (useYaml && existsSync(legacyFile)) {
    diagnostics.push({ file: legacyFile, line: 1, col: 1, message: 'records.config is ignored because records.yaml exists', severity: 'warning' });
  }
  const file = useYaml ? yamlFile : legacyFile;
  let entries = new Map<string, RecordEntry>();
  const text = existsSync(file) ? readText(file, diagnostics) : null;
  if (text !== null) {
    const parsed = useYaml ? parseRecordsYaml(text, file) : parseRecordsConfig(text, file);
    diagnostics.push(...parsed.diagnostics);
    entries = parsed.value;
  }
  const value = build(resolve(configDir), validate(file, entries, env, diagnostics), diagnostics);
  return { value, diagnostics: sortDiagnostics(diagnostics) };
}

/** File order (files in order of first mention), then line, then column. */
function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  const fileOrder = new Map<string, number>();
  for (const d of list) if (!fileOrder.has(d.file)) fileOrder.set(d.file, fileOrder.size);
  return [...list].sort((a, b) => fileOrder.get(a.file)! - fileOrder.get(b.file)! || a.line - b.line || a.col - b.col);
}
