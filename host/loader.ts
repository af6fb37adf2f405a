/**
 * plugin.config → import() → verify/init. A line names a built-in plugin by its ATS name
 * (`tls_bridge.so` or `tls_bridge`) or a JS module by path (absolute, or relative to
 * proxy.config.plugin.plugin_dir). A load failure names the file and line.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCode, ProxyError } from './api/errors.js';
import { PluginArgsError } from './api/plugin-args-error.js';
import type { Api, Plugin, PluginDiagnostic, PluginVerifyContext } from './api/types.js';
import type { Config, Diagnostic, PluginLine } from './config/types.js';

/** Built-in plugins, by ATS name without `.so`. */
const BUILTIN: Readonly<Record<string, string>> = {
  tls_bridge: '../plugins/tls_bridge/index.js',
  sni_router: '../plugins/sni_router/index.js',
};

export interface LoadedPlugin {
  readonly line: PluginLine;
  readonly plugin: Plugin;
  /** The name used in messages and hook ownership. */
  readonly name: string;
}

function where(l: PluginLine): string {
  return `${l.file}:${l.line}:1`;
}

/** Resolve a plugin.config name to a module file. */
export function resolvePluginPath(name: string, pluginDir: string): string | null {
  const builtin = BUILTIN[name.replace(/\.so$/, '')];
  if (builtin) return fileURLToPath(new URL(builtin, import.meta.url));
  const p = isAbsolute(name) ? name : resolve(pluginDir, name);
  return existsSync(p) ? p : null;
}

/** Import one plugin module and check its shape. Throws ProxyError naming file:line. */
export async function importPlugin(l: PluginLine, pluginDir: string): Promise<LoadedPlugin> {
  const path = resolvePluginPath(l.name, pluginDir);
  if (!path) {
    throw new ProxyError(ErrorCode.PLUGIN_NOT_FOUND, `${where(l)}: unknown plugin '${l.name}' (not built in: ${Object.keys(BUILTIN).join(', ')}; no file ${resolve(pluginDir, l.name)})`);
  }
  let mod: { default?: Plugin };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: Plugin };
  } catch (err) {
    throw new ProxyError(ErrorCode.PLUGIN_LOAD, `${where(l)}: cannot load plugin '${l.name}': ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const plugin = mod.default;
  if (!plugin || typeof plugin.init !== 'function' || typeof plugin.info?.name !== 'string') {
    throw new ProxyError(ErrorCode.PLUGIN_LOAD, `${where(l)}: '${l.name}' is not a tsproxy plugin (its default export needs info and init)`);
  }
  return { line: l, plugin, name: plugin.info.name };
}

/** What `verify` and `api.pluginLine` say about where a plugin was named. */
export function verifyContext(configDir: string, l: PluginLine): PluginVerifyContext {
  return { configDir, file: l.file, line: l.line, cols: l.cols };
}

function toDiag(d: PluginDiagnostic): Diagnostic {
  return { file: d.file, line: d.line, col: d.col, message: d.message, severity: d.severity ?? 'error' };
}

/** `--verify-config`: import every plugin and check its arguments without side effects. */
export async function verifyPlugins(config: Pick<Config, 'plugins' | 'configDir' | 'records'>): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  for (const l of config.plugins) {
    try {
      const { plugin } = await importPlugin(l, config.records.pluginDir);
      if (plugin.verify) out.push(...plugin.verify(verifyContext(config.configDir, l), [l.name, ...l.args]).map(toDiag));
    } catch (err) {
      out.push({ file: l.file, line: l.line, col: 1, message: messageOf(err, l), severity: 'error' });
    }
  }
  return out;
}

function messageOf(err: unknown, l: PluginLine): string {
  const m = (err as Error)?.message ?? String(err);
  const prefix = `${where(l)}: `;
  return m.startsWith(prefix) ? m.slice(prefix.length) : m;
}

/** Load and init every plugin in plugin.config order. Throws on the first failure (fatal at start). */
export async function initPlugins(config: Config, apiFor: (name: string, where: PluginVerifyContext) => Api): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  for (const l of config.plugins) {
    const p = await importPlugin(l, config.records.pluginDir);
    try {
      await p.plugin.init(apiFor(p.name, verifyContext(config.configDir, l)), [l.name, ...l.args]);
    } catch (err) {
      if (err instanceof PluginArgsError) throw err;
      throw new ProxyError(ErrorCode.PLUGIN_INIT, `${where(l)}: plugin '${p.name}' failed to initialise: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    loaded.push(p);
  }
  return loaded;
}
