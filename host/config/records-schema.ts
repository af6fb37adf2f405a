/**
 * The records tsproxy honours: ONE JSON Schema (draft 2020-12) keyed by ATS record name, with each
 * record's type, default, range or allowed values, and a one-line description. The schema
 * validates a flat object `{ "proxy.config.x.y": value }` built from records.yaml,
 * records.config and the environment; it is also the source of the README table.
 *
 * The validator is ajv's standalone code for this schema, written at build time by
 * records-codegen.ts, so the running proxy never loads ajv's compiler (a small resident heap is
 * a throughput matter: README, "Memory and GC").
 */

/** The JSON Schema of one record. `x-error` replaces the generic message when `const` fails. */
export interface RecordSchema {
  readonly type: 'integer' | 'string';
  readonly default: number | string;
  readonly description: string;
  readonly enum?: readonly (number | string)[];
  readonly const?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly 'x-error'?: string;
}

const seconds = (def: number, what: string): RecordSchema => ({
  type: 'integer',
  default: def,
  minimum: 0,
  description: `${what}, in seconds.`,
});

const flag = (def: 0 | 1, description: string): RecordSchema => ({ type: 'integer', default: def, enum: [0, 1], description });

const str = (def: string, description: string): RecordSchema => ({ type: 'string', default: def, description });

const PROPERTIES: Readonly<Record<string, RecordSchema>> = {
  'proxy.config.http.server_ports': str(
    '8080',
    'Listening ports: descriptors like `8080 8443:ssl 8080:ipv6 9000:blind` (port 0: an ephemeral port).',
  ),
  'proxy.config.http.connect_ports': str('443', 'Origin ports CONNECT may tunnel to: ports, `a-b` ranges or `*`.'),
  'proxy.config.http.cache.http': {
    type: 'integer',
    default: 0,
    const: 0,
    description: 'HTTP caching; tsproxy does not cache, so only 0 is accepted.',
    'x-error': 'cache is not supported; set proxy.config.http.cache.http to 0',
  },
  'proxy.config.url_remap.remap_required': flag(1, '1: a request that matches no remap rule is refused.'),
  'proxy.config.hostdb.host_file.path': str('', 'A hosts file (/etc/hosts format) consulted before DNS; empty: none.'),
  'proxy.config.diags.debug.enabled': {
    type: 'integer',
    default: 0,
    enum: [0, 1, 2],
    description: 'Debug output: 0 off, 1 on, 2 on for client IPs (treated as on).',
  },
  'proxy.config.diags.debug.tags': str('http|dns', 'Debug tags to print: a regex anchored at the start of the tag.'),
  'proxy.config.ssl.server.cert.path': str(
    '',
    'Directory of server certificates (ssl_multicert.config names are relative to it); empty: the config directory.',
  ),
  'proxy.config.ssl.server.private_key.path': str('', 'Directory of server private keys; empty: the config directory.'),
  'proxy.config.ssl.CA.cert.path': str('', 'Directory of CAs that verify client certificates (inbound TLS).'),
  'proxy.config.ssl.CA.cert.filename': str('', 'CA file, in `ssl.CA.cert.path`, that verifies client certificates.'),
  'proxy.config.ssl.client.certification_level': {
    type: 'integer',
    default: 0,
    enum: [0, 1, 2],
    description: 'Client certificates on inbound TLS: 0 not requested, 1 optional, 2 required.',
  },
  'proxy.config.ssl.client.verify.server.policy': {
    type: 'string',
    default: 'ENFORCED',
    enum: ['DISABLED', 'PERMISSIVE', 'ENFORCED'],
    description: 'Origin certificate check: DISABLED, PERMISSIVE (failures logged) or ENFORCED (failures refused).',
  },
  'proxy.config.ssl.client.verify.server.properties': {
    type: 'string',
    default: 'ALL',
    enum: ['ALL', 'SIGNATURE', 'NAME', 'NONE'],
    description: 'What the origin certificate check covers: ALL, SIGNATURE, NAME or NONE.',
  },
  'proxy.config.ssl.client.CA.cert.path': str('', 'Directory of CAs that verify origins; empty with no filename: system roots.'),
  'proxy.config.ssl.client.CA.cert.filename': str('', 'CA file, in `ssl.client.CA.cert.path`, that verifies origins.'),
  'proxy.config.ssl.client.cert.path': str('', 'Directory of the client certificate sent to origins.'),
  'proxy.config.ssl.client.cert.filename': str('', 'Client certificate file sent to origins; empty: none.'),
  'proxy.config.ssl.client.private_key.path': str('', 'Directory of the client private key.'),
  'proxy.config.ssl.client.private_key.filename': str('', 'Client private key file; empty: none.'),
  'proxy.config.ssl.origin_session_cache.enabled': flag(1, '1: resume outbound TLS sessions with the newest session ticket each origin sent.'),
  'proxy.config.ssl.origin_session_cache.size': {
    type: 'integer',
    default: 10240,
    minimum: 1,
    description: 'Origins (name, address and port) whose TLS session tickets are kept, least recently used first out.',
  },
  'proxy.config.tunnel.prewarm.enabled': flag(
    1,
    '1: keep TLS connections ready to the peers of plugins\' internal `CONNECT https://` tunnels (tls_bridge), once a peer is first used.',
  ),
  'proxy.config.tunnel.prewarm.min': {
    type: 'integer',
    default: 2,
    minimum: 1,
    maximum: 64,
    description: 'Spare pre-warmed TLS connections kept ready per peer.',
  },
  'proxy.config.tunnel.prewarm.inactive_timeout': {
    ...seconds(20, 'Life of an unused pre-warmed connection (keep it below the peer\'s idle timeout)'),
    minimum: 1,
  },
  'proxy.config.ssl.handshake_timeout_in': seconds(30, 'Inbound TLS handshake timeout'),
  'proxy.config.http.connect_attempts_timeout': seconds(30, 'Origin connect timeout'),
  'proxy.config.http.transaction_no_activity_timeout_in': seconds(30, 'Client-side inactivity timeout'),
  'proxy.config.http.transaction_no_activity_timeout_out': seconds(30, 'Origin-side inactivity timeout'),
  'proxy.config.net.connections_throttle': {
    type: 'integer',
    default: 30000,
    minimum: 0,
    description: 'Most client connections open at once (0: no limit).',
  },
  'proxy.config.http.request_header_max_size': {
    type: 'integer',
    default: 131072,
    minimum: 1,
    description: 'Largest request header block, in bytes.',
  },
  'proxy.config.plugin.plugin_dir': str('plugins', 'Directory for relative plugin paths, relative to the config directory.'),
  'proxy.config.exec_thread.autoconfig.enabled': flag(1, '1: one worker process per CPU core (node:cluster); 0: `exec_thread.limit` workers.'),
  'proxy.config.exec_thread.limit': {
    type: 'integer',
    default: 2,
    minimum: 1,
    maximum: 256,
    description: 'Worker processes when autoconfig is off; 1: one process, no workers.',
  },
};

/** Old names still accepted, mapped to the current ones (ATS 10 renamed them in records.yaml). */
export const RENAMED_RECORDS: ReadonlyMap<string, string> = new Map([
  ['proxy.config.exec_thread.autoconfig', 'proxy.config.exec_thread.autoconfig.enabled'],
  ['proxy.config.ssl.origin_session_cache', 'proxy.config.ssl.origin_session_cache.enabled'],
  ['proxy.config.tunnel.prewarm', 'proxy.config.tunnel.prewarm.enabled'],
]);

export const RECORDS_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: PROPERTIES,
  additionalProperties: false,
} as const;

/** ATS record type names, as records.config writes them. */
export type RecordType = 'INT' | 'STRING';

export interface RecordInfo {
  readonly name: string;
  readonly type: RecordType;
  readonly default: number | string;
  readonly description: string;
  readonly schema: RecordSchema;
}

/** Every record tsproxy honours, in schema order. */
export const RECORDS: readonly RecordInfo[] = Object.entries(PROPERTIES).map(([name, schema]) => ({
  name,
  type: schema.type === 'integer' ? 'INT' : 'STRING',
  default: schema.default,
  description: schema.description,
  schema,
}));

export const RECORD_NAMES: readonly string[] = RECORDS.map((r) => r.name);

const BY_NAME: ReadonlyMap<string, RecordInfo> = new Map(RECORDS.map((r) => [r.name, r]));

export function recordInfo(name: string): RecordInfo | undefined {
  return BY_NAME.get(name);
}

/** One record's value where it was found; line and col point at the value's first character. */
export interface RecordEntry {
  readonly value: unknown;
  readonly line: number;
  readonly col: number;
  readonly keyLine: number;
  readonly keyCol: number;
}

const SUFFIX: Readonly<Record<string, number>> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** An ATS integer: decimal digits with an optional K, M, G or T (binary) suffix; null if not one. */
export function parseAtsInt(text: string): number | null {
  const m = /^([+-]?\d+)([KMGT]?)$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * (m[2] ? SUFFIX[m[2]]! : 1);
}

/**
 * Bring a value as written to the record's type: numeric strings for INT records (ATS accepts
 * them), numbers and booleans as text for STRING records, an empty value as "". Anything else is
 * left for the schema to reject.
 */
export function coerceRecordValue(name: string, value: unknown): unknown {
  const info = BY_NAME.get(name);
  if (!info) return value;
  if (info.type === 'INT') return typeof value === 'string' ? (parseAtsInt(value) ?? value) : value;
  if (value === null) return '';
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
}

/** The allowed values or range of a record, for docs and messages (`0, 1, 2`; `1..256`; `>= 0`). */
export function recordRange(schema: RecordSchema): string {
  if (schema.const !== undefined) return String(schema.const);
  if (schema.enum) return schema.enum.join(', ');
  if (schema.minimum !== undefined && schema.maximum !== undefined) return `${schema.minimum}..${schema.maximum}`;
  if (schema.minimum !== undefined) return `>= ${schema.minimum}`;
  return '';
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The README table of records: Record | Type | Default | Description. */
export function recordsMarkdownTable(): string {
  const rows = RECORDS.map((r) => {
    const range = recordRange(r.schema);
    const type = range ? `${r.type} (${range})` : r.type;
    const def = r.default === '' ? '""' : `\`${r.default}\``;
    return `| \`${r.name}\` | ${cell(type)} | ${cell(def)} | ${cell(r.description)} |`;
  });
  return ['| Record | Type | Default | Description |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
