/** What every scenario and launcher gets: options, the process registry, the PKI and a scratch dir. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchOptions } from './args.js';
import type { Pki } from './pki.js';
import type { ProcRegistry } from './procs.js';

export interface BenchContext {
  readonly opts: BenchOptions;
  readonly reg: ProcRegistry;
  readonly pki: Pki;
  /** Scratch dir for this run (configs, logs); removed at the end. */
  readonly tmp: string;
  /** Where the compiled client scripts are (dist/bench/clients). */
  readonly clientsDir: string;
  /** Where the compiled baseline relay is (dist/bench/baseline). */
  readonly baselineDir: string;
  /** A progress line on stderr. */
  progress(msg: string): void;
}

let dirSeq = 0;

/** A fresh directory under the scratch dir. */
export async function scratchDir(ctx: BenchContext, name: string): Promise<string> {
  const d = join(ctx.tmp, `${name}-${++dirSeq}`);
  await mkdir(d, { recursive: true, mode: 0o755 });
  return d;
}
