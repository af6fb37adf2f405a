#!/usr/bin/env node
/**
 * tsproxy [--config-dir DIR] [-T TAGS] [--verify-config]
 *
 * Loads DIR's records.yaml (or records.config), plugin.config and the optional files, then
 * listens on every proxy.config.http.server_ports descriptor. Config problems print as
 * `FILE:LINE:COL: message` and exit 1; SIGTERM and SIGINT stop cleanly (exit 0). With more than
 * one worker (proxy.config.exec_thread.*) this process is the primary and forks them (workers.ts).
 */
import { resolve } from 'node:path';
import v8 from 'node:v8';
import { ProxyError } from './api/errors.js';
import { PluginArgsError } from './api/plugin-args-error.js';
import { formatDiagnostic, loadConfig } from './config/load.js';
import type { Diagnostic } from './config/types.js';
import { Host } from './core/host.js';
import { diags } from './diags.js';
import { verifyPlugins } from './loader.js';
import { isWorker, reportListening, runPrimary, ticketKeysFromPrimary, workerCount } from './workers.js';

// Keep the young generation at V8's initial 1 MB semi-spaces instead of letting connection churn
// grow it to 16 MB: about 10 KB less resident memory per idle tunnel, no measured CPU cost
// (README, "Memory and GC"). Only the growth factor can still be changed once V8 is running.
v8.setFlagsFromString('--semi-space-growth-factor=1');

const USAGE = `usage: tsproxy [--config-dir DIR] [-T TAGS] [--verify-config]
  --config-dir DIR   directory with records.yaml and plugin.config (default: .)
  -T TAGS            enable debug tags (a regex matched as a prefix, | for alternatives)
  --verify-config    load and validate every file and plugin argument, then exit (0 valid, 1 not)`;

interface Cli {
  readonly configDir: string;
  readonly tags: string | null;
  readonly verify: boolean;
}

function parseArgs(argv: readonly string[]): Cli | string {
  let configDir = '.';
  let tags: string | null = null;
  let verify = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string | null => (i + 1 < argv.length ? argv[++i]! : null);
    if (a === '--config-dir' || a === '-c') {
      const v = value();
      if (v === null) return `${a} needs a directory`;
      configDir = v;
    } else if (a.startsWith('--config-dir=')) configDir = a.slice('--config-dir='.length);
    else if (a === '-T' || a === '--debug-tags') {
      const v = value();
      if (v === null) return `${a} needs a tag expression`;
      tags = v;
    } else if (a.startsWith('-T') && a.length > 2) tags = a.slice(2);
    else if (a === '--verify-config') verify = true;
    else if (a === '-h' || a === '--help') return '';
    else return `unknown argument '${a}'`;
  }
  return { configDir: resolve(configDir), tags, verify };
}

function print(ds: readonly Diagnostic[]): void {
  for (const d of ds) process.stderr.write(formatDiagnostic(d) + '\n');
}

function failed(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/** A start-up error as `FILE:LINE:COL: message` lines (no stack trace). */
function printError(err: unknown): void {
  if (err instanceof PluginArgsError) return print(err.diagnostics.map((d) => ({ ...d, severity: d.severity ?? 'error' })));
  const msg = err instanceof ProxyError ? err.message : `internal error: ${(err as Error)?.stack ?? String(err)}`;
  process.stderr.write(msg + '\n');
}

async function main(): Promise<number> {
  const cli = parseArgs(process.argv.slice(2));
  if (typeof cli === 'string') {
    process.stderr.write((cli ? `tsproxy: ${cli}\n` : '') + USAGE + '\n');
    return cli ? 2 : 0;
  }
  const { config, partial, diagnostics } = loadConfig(cli.configDir);
  const pluginDiagnostics = await verifyPlugins(partial);
  const all = [...diagnostics, ...pluginDiagnostics];
  print(all);
  if (cli.verify) {
    process.stderr.write(failed(all) ? `tsproxy: configuration in ${cli.configDir} is invalid\n` : `tsproxy: configuration in ${cli.configDir} is valid\n`);
    return failed(all) ? 1 : 0;
  }
  if (!config || failed(all)) return 1;

  const rec = config.records;
  const tags = [rec.debugEnabled > 0 ? rec.debugTags : '', cli.tags ?? ''].filter((t) => t !== '').join('|');
  diags.configure(rec.debugEnabled > 0 || cli.tags !== null, tags);

  const workers = workerCount(rec);
  if (workers > 1 && !isWorker()) return runPrimary(workers);

  let host: Host;
  try {
    const ticketKeys = await ticketKeysFromPrimary();
    host = new Host(config, ticketKeys !== null ? { ticketKeys } : {});
    await host.loadPlugins();
  } catch (err) {
    printError(err);
    return 1;
  }
  let bound;
  try {
    bound = await host.listen();
  } catch (err) {
    process.stderr.write(`tsproxy: cannot listen: ${(err as Error).message}\n`);
    return 1;
  }
  const list = bound.map((b) => `${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port} (${b.kind})`).join(', ');
  if (isWorker()) reportListening(list);
  else diags.note('listening on %s', list);

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      diags.note('%s: stopping', sig);
      host.stop(5000).then(
        () => done(0),
        () => done(0),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    printError(err);
    process.exit(1);
  },
);
