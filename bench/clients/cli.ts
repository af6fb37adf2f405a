/** Shared plumbing for the client processes: one JSON result line on stdout, errors on stderr. */
import { parseArgs } from 'node:util';

export type FlagSpec = Record<string, { type: 'string'; default?: string }>;

/** Parse `--name value` flags; every flag is a string (convert with num()). */
export function flags(spec: FlagSpec): Record<string, string | undefined> {
  const { values } = parseArgs({ options: spec, strict: true, allowPositionals: false });
  return values as Record<string, string | undefined>;
}

/** A required numeric flag. */
export function num(values: Record<string, string | undefined>, name: string): number {
  const v = Number(values[name]);
  if (!Number.isFinite(v)) throw new Error(`--${name} must be a number (got ${String(values[name])})`);
  return v;
}

/** A required string flag. */
export function str(values: Record<string, string | undefined>, name: string): string {
  const v = values[name];
  if (v === undefined || v === '') throw new Error(`--${name} is required`);
  return v;
}

/** Print the result line. */
export function emit(result: object): void {
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** Run a client's main; print the error and exit 1 on failure. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

/** This process's own CPU seconds so far. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
