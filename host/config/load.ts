/**
 * Load a config directory into one Config generation: records, then plugin.config,
 * remap.config, ip_allow.yaml, ssl_multicert.config and the hosts file. Every file is read and
 * every diagnostic collected in one pass; the Config is null when any diagnostic is an error.
 *
 * Optional files: an absent plugin.config is empty (as ATS tolerates); no remap.config is an
 * empty table; no ip_allow.yaml gives defaultIpAllow(); no ssl_multicert.config is no
 * certificates; no `proxy.config.hostdb.host_file.path` is an empty hosts table. A hosts file
 * that is named but missing is an error at the record that names it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseHostsFile } from './hosts-file.js';
import { defaultIpAllow, parseIpAllowYaml } from './ip-allow.js';
import { parsePluginConfig } from './plugin-config.js';
import { ENV_FILE, loadRecords, parseRecordsConfig, parseRecordsYaml, recordEnvName } from './records.js';
import { parseRemapConfig } from './remap.js';
import { parseSslMulticert } from './ssl-multicert.js';
import type { Config, Diagnostic, Parsed } from './types.js';

const HOST_FILE_RECORD = 'proxy.config.hostdb.host_file.path';

/** `file` relative to `configDir` when inside it, else as given (absolute). */
function displayPath(configDir: string, file: string): string {
  const abs = resolve(configDir, file);
  const rel = relative(configDir, abs);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

/** `FILE:LINE:COL: message`, `FILE:LINE:COL: warning: message`; no position when line is 0 (`env`). */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  return `${where}: ${d.severity === 'warning' ? 'warning: ' : ''}${d.message}`;
}

type ReadResult = { readonly text: string } | { readonly absent: true } | { readonly error: Diagnostic };

function readConfigFile(abs: string, shown: string): ReadResult {
  try {
    return { text: readFileSync(abs, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { absent: true };
    const message = `cannot read ${shown}: ${(e as Error).message}`;
    return { error: { file: shown, line: 1, col: 1, message, severity: 'error' } };
  }
}

/** A diagnostic about the hosts-file record, where it was set: its env variable, or records.yaml/records.config. */
function hostFileRecordError(configDir: string, env: NodeJS.ProcessEnv, problem: string): Diagnostic {
  const variable = recordEnvName(HOST_FILE_RECORD);
  if (env[variable] !== undefined) return { file: ENV_FILE, line: 0, col: 0, message: `${variable}: ${problem}`, severity: 'error' };
  const yamlFile = join(configDir, 'records.yaml');
  const file = existsSync(yamlFile) ? yamlFile : join(configDir, 'records.config');
  const read = readConfigFile(file, file);
  const parsed = 'text' in read ? (file === yamlFile ? parseRecordsYaml(read.text, file) : parseRecordsConfig(read.text, file)) : null;
  const entry = parsed?.value.get(HOST_FILE_RECORD);
  return { file, line: entry?.line ?? 1, col: entry?.col ?? 1, message: `${HOST_FILE_RECORD}: ${problem}`, severity: 'error' };
}

export interface LoadedConfig {
  /** The whole generation, or null when any diagnostic is an error. */
  readonly config: Config | null;
  /** What plugin verification needs, available even when `config` is null. */
  readonly partial: Pick<Config, 'configDir' | 'records' | 'plugins'>;
  readonly diagnostics: Diagnostic[];
}

/**
 * Load every config file of `configDir`. `env` supplies `PROXY_CONFIG_*` record overrides.
 * Diagnostics name files relative to `configDir` when inside it.
 */
export function loadConfig(configDir: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const dir = resolve(configDir);
  const diagnostics: Diagnostic[] = [];
  const records = loadRecords(dir, env);
  diagnostics.push(...records.diagnostics);
  const rec = records.value;

  /** Parse `name` (in the config dir) if present; `absent` is the value when it is not. */
  const optional = <T>(name: string, parse: (text: string, file: string) => Parsed<T>, absent: () => T): T => {
    const read = readConfigFile(join(dir, name), name);
    if ('absent' in read) return absent();
    if ('error' in read) {
      diagnostics.push(read.error);
      return absent();
    }
    const parsed = parse(read.text, name);
    diagnostics.push(...parsed.diagnostics);
    return parsed.value;
  };

  const plugins = optional('plugin.config', (t, f) => parsePluginConfig(t, f, rec.values), () => []);
  const remap = optional('remap.config', (t, f) => parseRemapConfig(t, f, dir), () => parseRemapConfig('', 'remap.config', dir).value);
  const ipAllow = optional('ip_allow.yaml', parseIpAllowYaml, defaultIpAllow);
  const sslMulticert = optional(
    'ssl_multicert.config',
    (t, f) => parseSslMulticert(t, f, rec.ssl.serverCertDir, rec.ssl.serverKeyDir),
    () => [],
  );

  let hosts = parseHostsFile('', 'hosts').value;
  if (rec.hostFilePath !== null) {
    const shown = displayPath(dir, rec.hostFilePath);
    const read = readConfigFile(rec.hostFilePath, shown);
    if ('absent' in read) {
      diagnostics.push(hostFileRecordError(dir, env, `the hosts file '${rec.hostFilePath}' does not exist`));
    } else if ('error' in read) {
      diagnostics.push(read.error);
    } else {
      const parsed = parseHostsFile(read.text, shown);
      diagnostics.push(...parsed.diagnostics);
      hosts = parsed.value;
    }
  }

  const shownDiagnostics = diagnostics.map((d) => ({ ...d, file: displayPath(dir, d.file) }));
  const failed = shownDiagnostics.some((d) => d.severity === 'error');
  const config: Config | null = failed ? null : { configDir: dir, records: rec, plugins, remap, ipAllow, sslMulticert, hosts };
  return { config, partial: { configDir: dir, records: rec, plugins }, diagnostics: shownDiagnostics };
}
