/**
 * sni_router: ATS's layer-4 SNI routing (sni.yaml tunnel_route / forward_route /
 * partial_blind_route, ats.md 3.5 and 4) as a plugin on SSL_CLIENT_HELLO.
 *
 * plugin.config: `sni_router.so [--file FILE]` (default `sni.yaml` in the config directory;
 * relative paths against it). The file is re-read when it changes (checked at most once a second,
 * on a new connection): new connections use the new table; a broken file keeps the old one.
 */
import { channel } from 'node:diagnostics_channel';
import { statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { PluginArgsError, VConnHookId } from '../../host/api/index.js';
import type { Api, DbgCtl, Plugin, PluginDiagnostic, PluginVerifyContext, TlsVConn } from '../../host/api/index.js';
import { loadSniYaml } from './config.js';
import type { SniTable } from './config.js';
import { route } from './router.js';
import type { RouteResult } from './router.js';

const PLUGIN_NAME = 'sni_router';
const PLUGIN_TAG = 'sni_router';
const DEFAULT_FILE = 'sni.yaml';
const RELOAD_CHECK_MS = 1000;
/** Published once per routed connection: `{ vconnId, sni, localPort, clientIp, action, target?, reason?, rule, stats }`. */
export const OUTCOME_CHANNEL = 'tsproxy:sni_router:outcome';

export type Outcome = RouteResult['action'];
export type Stats = Record<Outcome, number>;

/** `[--file F]` (or `--file=F`) after argv[0]: the sni.yaml path, or the problems. */
export function parseArgs(ctx: PluginVerifyContext, args: readonly string[]): { file: string; diagnostics: PluginDiagnostic[] } {
  const diagnostics: PluginDiagnostic[] = [];
  let file = DEFAULT_FILE;
  const problem = (message: string): void => void diagnostics.push({ file: ctx.file, line: ctx.line, col: 1, message, severity: 'error' });
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--file' && i + 1 < args.length) file = args[++i]!;
    else if (a.startsWith('--file=') && a.length > 7) file = a.slice(7);
    else if (a === '--file') problem(`${PLUGIN_NAME}: --file needs a file name`);
    else problem(`${PLUGIN_NAME}: unexpected argument '${a}' (usage: sni_router.so [--file sni.yaml])`);
  }
  return { file: isAbsolute(file) ? file : join(ctx.configDir, file), diagnostics };
}

/** The routing table in force, re-read when the file's stat changes. */
class TableHolder {
  #table: SniTable;
  #stamp: string;
  #lastCheck = Date.now();
  #badStamp = '';
  readonly #configDir: string;
  readonly #api: Api;
  readonly #dbg: DbgCtl;

  /** `stamp`: the file's stat taken before `table` was read (a change in between is not missed). */
  constructor(api: Api, dbg: DbgCtl, table: SniTable, stamp: string) {
    this.#api = api;
    this.#dbg = dbg;
    this.#table = table;
    this.#configDir = api.configDir;
    this.#stamp = stamp;
  }

  /** The table for a new connection (checks the file at most once per RELOAD_CHECK_MS). */
  current(): SniTable {
    const now = Date.now();
    if (now - this.#lastCheck >= RELOAD_CHECK_MS) {
      this.#lastCheck = now;
      this.#check();
    }
    return this.#table;
  }

  #check(): void {
    const file = this.#table.file;
    const stamp = stampOf(file);
    if (stamp === this.#stamp || stamp === this.#badStamp) return;
    const { table, diagnostics } = loadSniYaml(file, this.#configDir);
    const errors = diagnostics.filter((d) => d.severity !== 'warning');
    if (errors.length > 0) {
      this.#badStamp = stamp;
      for (const d of errors) this.#api.error('[%s] %s:%d:%d: %s', PLUGIN_NAME, d.file, d.line, d.col, d.message);
      this.#api.error('[%s] %s not reloaded: keeping the previous %d rules', PLUGIN_NAME, file, this.#table.rules.length);
      return;
    }
    warn(this.#api, diagnostics);
    this.#table = table;
    this.#stamp = stamp;
    this.#badStamp = '';
    this.#dbg('reloaded %s: %d rules', file, table.rules.length);
  }
}

function stampOf(file: string): string {
  try {
    const s = statSync(file, { bigint: true });
    return `${s.mtimeNs}:${s.size}:${s.ino}`;
  } catch {
    return 'missing';
  }
}

function warn(api: Api, diagnostics: readonly PluginDiagnostic[]): void {
  for (const d of diagnostics) {
    if (d.severity === 'warning') api.note('[%s] %s:%d:%d: warning: %s', PLUGIN_NAME, d.file, d.line, d.col, d.message);
  }
}

/** SSL_CLIENT_HELLO: decide for one connection and resume it (tunnel/forward/reject resume by themselves). */
function clientHelloHook(holder: TableHolder, dbg: DbgCtl, stats: Stats): (vc: TlsVConn) => void {
  const outcomes = channel(OUTCOME_CHANNEL);
  return (vc) => {
    const r = route(holder.current(), { sni: vc.sni, localPort: vc.localAddr.port, clientIp: vc.clientAddr.address });
    stats[r.action]++;
    const where = r.rule ? `${r.rule.file}:${r.rule.line}` : 'no rule';
    if (dbg.on) {
      const what = r.action === 'reject' ? `reject (${r.reason})` : r.action === 'none' ? 'none: TLS terminated here' : `${r.action} to ${r.target.host}:${r.target.port}`;
      dbg('vconn %d fqdn [%s] port %d from %s: %s (%s)', vc.id, vc.sni ?? '', vc.localAddr.port, vc.clientAddr.address, what, where);
    }
    if (outcomes.hasSubscribers) {
      outcomes.publish({
        vconnId: vc.id, sni: vc.sni, localPort: vc.localAddr.port, clientIp: vc.clientAddr.address, action: r.action,
        target: 'target' in r ? r.target : undefined, reason: 'reason' in r ? r.reason : undefined, rule: where, stats: { ...stats },
      });
    }
    switch (r.action) {
      case 'tunnel':
        return vc.tunnel(r.target);
      case 'forward':
        return vc.forward(r.target);
      case 'partial_blind':
        return vc.forward(r.target, { tls: true, alpn: r.alpn ?? [] });
      case 'reject':
        return vc.reject(r.reason);
      case 'none':
        return vc.reenable();
    }
  };
}

function verify(ctx: PluginVerifyContext, args: readonly string[]): PluginDiagnostic[] {
  const { file, diagnostics } = parseArgs(ctx, args);
  return diagnostics.length > 0 ? diagnostics : loadSniYaml(file, ctx.configDir).diagnostics;
}

function init(api: Api, args: readonly string[]): void {
  const { file, diagnostics: argProblems } = parseArgs(api.pluginLine, args);
  if (argProblems.length > 0) throw new PluginArgsError(argProblems);
  const stamp = stampOf(file);
  const { table, diagnostics } = loadSniYaml(file, api.configDir);
  const errors = diagnostics.filter((d) => d.severity !== 'warning');
  if (errors.length > 0) throw new PluginArgsError(errors);
  // Warnings were printed by the host from verify(), which it runs before init.
  const dbg = api.dbgCtl(PLUGIN_TAG);
  dbg('loaded %s: %d rules', file, table.rules.length);
  const stats: Stats = { tunnel: 0, forward: 0, partial_blind: 0, reject: 0, none: 0 };
  api.vconnHookAdd(VConnHookId.SslClientHello, clientHelloHook(new TableHolder(api, dbg, table, stamp), dbg, stats));
}

const plugin: Plugin = {
  info: { name: PLUGIN_NAME, vendor: 'tsproxy', email: '' },
  verify,
  init,
};
export default plugin;
