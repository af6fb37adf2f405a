/** Start the real tsproxy CLI as a child process and talk to it through its output. */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { TestContext } from 'node:test';
import { MAIN_JS } from './paths.js';
import { run } from './tools.js';

export type PortKind = 'http' | 'ssl' | 'blind';

export interface ListeningPort {
  /** Without brackets: `127.0.0.1`, `::1`. */
  address: string;
  port: number;
  kind: PortKind;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proxy {
  pid: number;
  /** Every listening port, in the order of the `server_ports` descriptors. */
  ports: ListeningPort[];
  /** The first port of `kind`; throws when there is none. */
  port(kind?: PortKind): number;
  stdoutLines(): string[];
  stderrLines(): string[];
  /** All output so far, for assertion messages. */
  output(): string;
  /**
   * The first stderr line at index `from` or later (default 0) that matches `re`. Rejects, with the output,
   * when `timeoutMs` passes or the process exits first.
   */
  waitForLine(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** Resolves when the process has exited (it is never killed by this). */
  exited: Promise<ExitStatus>;
  /** Sends `signal`, then SIGKILL after `killAfterMs`; resolves with how it exited. Safe to call twice. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<ExitStatus>;
}

export interface StartOptions {
  /** `-T` debug tags. */
  tags?: string;
  /** Merged over process.env. */
  env?: Record<string, string | undefined>;
  /** How long to wait for the listening line (default 10 s). */
  timeoutMs?: number;
  /** Extra CLI arguments. */
  args?: readonly string[];
  /** When given, `t.after` stops the proxy. */
  t?: TestContext;
}

const LISTENING = /NOTE: listening on (.+)$/;
const ENTRY = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d+) \((http|ssl|blind)\)$/;
const DEFAULT_STOP_MS = 5000;

/** Parses the entries of a `NOTE: listening on ...` line; null when the line is not one. */
export function parseListening(line: string): ListeningPort[] | null {
  const m = LISTENING.exec(line);
  if (!m?.[1]) return null;
  const ports: ListeningPort[] = [];
  for (const entry of m[1].split(', ')) {
    const e = ENTRY.exec(entry.trim());
    if (!e) return null;
    ports.push({ address: e[1] ?? e[2] ?? '', port: Number(e[3]), kind: e[4] as PortKind });
  }
  return ports;
}

/** Children still running, killed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Splits a stream into lines, calling `onLine` for each complete one (and the tail at end). */
function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) onLine(p.replace(/\r$/, ''));
  });
  stream.on('end', () => {
    if (rest !== '') onLine(rest);
    rest = '';
  });
}

/** One process, no workers: the tests' default (ATS's environment overrides of proxy.config.exec_thread.*). */
export const ONE_PROCESS: Readonly<Record<string, string>> = {
  PROXY_CONFIG_EXEC_THREAD_AUTOCONFIG_ENABLED: '0',
  PROXY_CONFIG_EXEC_THREAD_LIMIT: '1',
};

/**
 * Spawns `node MAIN_JS --config-dir DIR [-T tags]` and resolves once the listening line has been
 * printed. One process unless `opts.env` sets the exec_thread records.
 */
export function startTsproxy(configDir: string, opts: StartOptions = {}): Promise<Proxy> {
  const args = [MAIN_JS, '--config-dir', configDir, ...(opts.tags ? ['-T', opts.tags] : []), ...(opts.args ?? [])];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...ONE_PROCESS, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const out: string[] = [];
  const err: string[] = [];
  const events = new EventEmitter();
  let status: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      status = { code, signal };
      events.emit('exit');
      resolve(status);
    });
  });
  child.on('error', (e) => err.push(`spawn error: ${e.message}`));
  lines(child.stdout!, (l) => out.push(l));
  lines(child.stderr!, (l) => {
    err.push(l);
    events.emit('line', l, err.length - 1);
  });
  const output = (): string => `--- stderr ---\n${err.join('\n')}\n--- stdout ---\n${out.join('\n')}`;

  const waitForLine = (re: RegExp, timeoutMs = 5000, from = 0): Promise<string> =>
    new Promise((resolve, reject) => {
      const seen = err.slice(from).find((l) => re.test(l));
      if (seen !== undefined) return resolve(seen);
      const done = (): void => {
        clearTimeout(timer);
        events.off('line', onLine);
        events.off('exit', onExit);
      };
      const onLine = (l: string, i: number): void => {
        if (i < from || !re.test(l)) return;
        done();
        resolve(l);
      };
      const onExit = (): void => {
        done();
        reject(new Error(`tsproxy exited (${JSON.stringify(status)}) before a line matched ${re}\n${output()}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no line matched ${re} within ${timeoutMs} ms\n${output()}`));
      }, timeoutMs);
      events.on('line', onLine);
      if (status) onExit();
      else events.on('exit', onExit);
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', killAfterMs = DEFAULT_STOP_MS): Promise<ExitStatus> => {
    if (status) return status;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    const s = await exited;
    clearTimeout(timer);
    return s;
  };

  if (opts.t) opts.t.after(() => stop());

  const proxy = async (): Promise<Proxy> => {
    const line = await waitForLine(LISTENING, opts.timeoutMs ?? 10_000);
    const ports = parseListening(line);
    if (!ports) throw new Error(`cannot parse the listening line: ${line}\n${output()}`);
    return {
      pid: child.pid ?? -1,
      ports,
      port: (kind?: PortKind) => {
        const p = ports.find((x) => kind === undefined || x.kind === kind);
        if (!p) throw new Error(`tsproxy has no ${kind ?? ''} port: ${line}`);
        return p.port;
      },
      stdoutLines: () => [...out],
      stderrLines: () => [...err],
      output,
      waitForLine,
      exited,
      stop,
    };
  };
  return proxy().catch(async (e: unknown) => {
    await stop('SIGKILL');
    throw e;
  });
}

export interface VerifyResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node MAIN_JS --config-dir DIR --verify-config`. */
export async function verifyConfig(dir: string, timeoutMs = 10_000): Promise<VerifyResult> {
  const r = await run(process.execPath, [MAIN_JS, '--config-dir', dir, '--verify-config'], { timeoutMs });
  return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
}
