/** System tools for tests: find them, skip (or fail under CI) when missing, run them with a hard timeout. */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

/** Directories searched after PATH: Debian puts haproxy, squid and nginx in sbin, absent from a user's PATH. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

const located = new Map<string, string | null>();

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `cmd` (PATH, then the sbin dirs), or null. Cached per process. */
export function which(cmd: string): string | null {
  const hit = located.get(cmd);
  if (hit !== undefined) return hit;
  let found: string | null = null;
  if (cmd.includes('/')) {
    found = isExecutable(cmd) ? cmd : null;
  } else {
    const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
    found = dirs.map((d) => join(d, cmd)).find(isExecutable) ?? null;
  }
  located.set(cmd, found);
  return found;
}

/** Whether `cmd` is installed. */
export function has(cmd: string): boolean {
  return which(cmd) !== null;
}

/** True when running under CI (`CI=true`), where .ci/run installs every tool, so a missing one is a failure. */
export function isCi(): boolean {
  return process.env['CI'] === 'true';
}

/**
 * Returns true when `cmd` is installed. Otherwise prints why and skips the test (`t.skip`) and returns false;
 * under CI=true it throws instead, failing the test. Use as `if (!requireTool(t, 'curl')) return;`.
 */
export function requireTool(t: TestContext, cmd: string, why = 'this test runs it'): boolean {
  if (has(cmd)) return true;
  const reason = `${cmd} not installed: ${why}`;
  if (isCi()) throw new Error(`${reason} (CI=true and .ci/run installs it, so this is a failure)`);
  t.diagnostic(reason);
  t.skip(reason);
  return false;
}

export interface RunOptions {
  /** Hard limit: the process gets SIGKILL when it passes. */
  timeoutMs: number;
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  input?: string | Buffer;
  /** Merged over process.env; an `undefined` value removes the variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export interface RunResult {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: Buffer;
  stderr: string;
}

/** Runs `cmd args`, collecting its output; kills it with SIGKILL once `timeoutMs` passes (then `timedOut`). */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const file = which(cmd) ?? cmd;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // the tool may exit before reading its input
    child.stdin.end(opts.input ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(out),
        stderr: timedOut ? `${stderr}[killed after ${opts.timeoutMs} ms]\n` : stderr,
      });
    });
  });
}
