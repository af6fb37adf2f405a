/** What a started proxy (tsproxy or a peer) looks like to a scenario. */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** One proxy process (tree root) whose CPU and memory count for the subject. */
export interface ProxyProc {
  readonly role: string;
  readonly pid: number;
}

export interface Started {
  readonly procs: readonly ProxyProc[];
  stop(): Promise<void>;
}

/** A started single-listener proxy. */
export interface Listening extends Started {
  readonly port: number;
}

/** One SNI route: the names (exact, case-insensitive) and the backend port. */
export interface SniRoute {
  readonly names: readonly string[];
  readonly port: number;
}

/** Thrown when a subject cannot run here (tool missing, failed to start): its runs are skipped. */
export class SkipError extends Error {
  override readonly name = 'SkipError';
}

const SBIN = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

/** Absolute path of the first of `names` found on PATH (plus sbin dirs), or a SkipError. */
export function requireBinary(names: readonly string[], pkg: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...SBIN];
  for (const name of names) {
    for (const d of dirs) {
      const p = join(d, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // keep looking
      }
    }
  }
  throw new SkipError(`${names.join('/')} not found (Debian package ${pkg}; --install-peers installs it)`);
}

/** Run `fn` and turn any failure into a SkipError carrying `what` and the reason. */
export async function orSkip<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SkipError) throw err;
    throw new SkipError(`${what} failed to start: ${err instanceof Error ? err.message : String(err)}`);
  }
}
