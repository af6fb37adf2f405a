/**
 * Every process the bench starts goes through one ProcRegistry: each runs in its own process group
 * (so a master/worker peer dies whole), its output goes to a log file (last lines kept for error
 * messages), and stopAll()/killAllSync() end them all, also on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { processTree } from './procfs.js';

const TAIL_LINES = 30;
const STOP_GRACE_MS = 2000;
const POLL_MS = 50;

export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Keep stdin as a pipe (write to `child.stdin`). */
  readonly stdin?: boolean;
  /** Called for each line of stdout/stderr. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or the signal name) when the process has exited. */
  readonly exited: Promise<number | string>;
  #tail: string[] = [];
  #exit: number | string | null = null;
  readonly #lineListeners = new Set<(line: string, stream: 'stdout' | 'stderr') => void>();

  constructor(name: string, child: ChildProcess, log: WriteStream, onLine: SpawnOptions['onLine']) {
    this.name = name;
    this.child = child;
    const watch = (stream: NodeJS.ReadableStream | null, which: 'stdout' | 'stderr'): void => {
      if (stream === null) return;
      createInterface({ input: stream }).on('line', (line) => {
        log.write(`${which}: ${line}\n`);
        this.#tail.push(line);
        if (this.#tail.length > TAIL_LINES) this.#tail.shift();
        onLine?.(line, which);
        for (const l of this.#lineListeners) l(line, which);
      });
    };
    watch(child.stdout, 'stdout');
    watch(child.stderr, 'stderr');
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.#exit = code ?? signal ?? 'unknown';
        log.end();
        resolve(this.#exit);
      });
      child.once('error', (err) => {
        this.#tail.push(err.message);
        this.#exit = err.message;
        log.end();
        resolve(err.message);
      });
    });
    // Listeners first: a failed spawn reports through 'error' on the next tick.
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.pid = child.pid;
  }

  get running(): boolean {
    return this.#exit === null;
  }

  /**
   * The first output line `parse` accepts (returns non-null for). Rejects if the process exits
   * first or after `timeoutMs`; the error says why and shows its last output.
   */
  firstLine<T>(parse: (line: string, stream: 'stdout' | 'stderr') => T | null, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#lineListeners.delete(listener);
      };
      const listener = (line: string, stream: 'stdout' | 'stderr'): void => {
        const v = parse(line, stream);
        if (v === null) return;
        done();
        resolve(v);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no expected output within ${timeoutMs} ms: ${this.tail(4).replaceAll('\n', ' | ')}`));
      }, timeoutMs);
      this.#lineListeners.add(listener);
      void this.exited.then(() => {
        done();
        reject(new Error(this.describeExit()));
      });
    });
  }

  /** The last output lines, for messages. */
  tail(lines = 8): string {
    return this.#tail.slice(-lines).join('\n');
  }

  /** Why it is not running (exit code or signal plus its last output lines), on one line. */
  describeExit(): string {
    const t = this.tail(4).replaceAll('\n', ' | ');
    return `${this.name} exited (${String(this.#exit)})${t === '' ? '' : `: ${t}`}`;
  }
}

export class ProcRegistry {
  readonly #logDir: string;
  readonly #procs = new Set<Proc>();
  #seq = 0;

  constructor(logDir: string) {
    this.#logDir = logDir;
  }

  /** Start a process in its own process group. */
  spawn(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Proc {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: [opts.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const safe = name.replace(/[^\w.-]+/g, '_');
    const p = new Proc(name, child, createWriteStream(join(this.#logDir, `${String(++this.#seq).padStart(3, '0')}-${safe}.log`)), opts.onLine);
    this.#procs.add(p);
    void p.exited.then(() => this.#procs.delete(p));
    return p;
  }

  /**
   * SIGTERM the process group, then SIGKILL after a grace period. Helpers left behind go too:
   * the rest of the group, and descendants that moved to their own session (squid's pinger).
   */
  async stop(p: Proc): Promise<void> {
    if (!p.running) return;
    const tree = processTree(p.pid);
    signalGroup(p.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(p.pid, 'SIGKILL'), STOP_GRACE_MS);
    await p.exited;
    clearTimeout(timer);
    signalGroup(p.pid, 'SIGKILL');
    for (const pid of tree) signalPid(pid, 'SIGKILL');
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#procs].map((p) => this.stop(p)));
  }

  /** On Ctrl-C: SIGKILL everything at once, then wait (at most STOP_GRACE_MS) until they are reaped. */
  async killAll(): Promise<void> {
    const waiting = [...this.#procs].map((p) => p.exited);
    this.killAllSync();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(waiting), new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(timer);
  }

  /** Last resort on exit: SIGKILL every process tree and group still known. */
  killAllSync(): void {
    for (const p of this.#procs) {
      for (const pid of processTree(p.pid)) signalPid(pid, 'SIGKILL');
      signalGroup(p.pid, 'SIGKILL');
    }
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  signalPid(-pgid, sig);
}

/** Resolve once host:port accepts a TCP connection; reject at the deadline or if `p` exits. */
export async function waitForPort(host: string, port: number, timeoutMs: number, p: Proc | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p !== null && !p.running) throw new Error(p.describeExit());
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) {
      const out = p === null ? '' : p.tail(4).replaceAll('\n', ' | ');
      throw new Error(`${p?.name ?? 'process'} did not listen on ${host}:${port} within ${timeoutMs} ms${out === '' ? '' : `: ${out}`}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
