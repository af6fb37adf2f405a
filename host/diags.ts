/**
 * ATS-style diagnostics: debug output gated by tag, plus NOTE, WARNING and ERROR lines, on stderr.
 *
 * Tags follow `proxy.config.diags.debug.tags` / `traffic_server -T`: a regex matched as a prefix
 * of the tag, `|` for alternatives. A disabled tag costs one boolean read: nothing is formatted.
 */
import { format } from 'node:util';

export interface DbgCtl {
  (fmt: string, ...args: unknown[]): void;
  /** True when the tag is enabled; guard costly arguments with it. */
  readonly on: boolean;
  readonly tag: string;
}

type Sink = (line: string) => void;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function stamp(d = new Date()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `[${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(
    d.getSeconds(),
  )}.${String(d.getMilliseconds()).padStart(3, '0')}]`;
}

/** Compile an ATS tag expression (`http|ssl.*`) into an anchored-at-start matcher. */
export function compileTags(expr: string): RegExp | null {
  const t = expr.trim();
  if (t === '') return null;
  return new RegExp(`^(?:${t})`);
}

class Diags {
  #enabled = false;
  #re: RegExp | null = null;
  #version = 0;
  #sink: Sink = (line) => process.stderr.write(line + '\n');

  /** Set from records (`diags.debug.enabled`, `.tags`) merged with `-T`. */
  configure(enabled: boolean, tags: string): void {
    this.#enabled = enabled;
    this.#re = enabled ? compileTags(tags) : null;
    this.#version++;
  }

  /** Redirect output (tests). Returns the previous sink. */
  setSink(sink: Sink): Sink {
    const prev = this.#sink;
    this.#sink = sink;
    return prev;
  }

  tagOn(tag: string): boolean {
    return this.#enabled && this.#re !== null && this.#re.test(tag);
  }

  get version(): number {
    return this.#version;
  }

  write(level: string, tag: string | null, fmt: string, args: unknown[]): void {
    const body = args.length ? format(fmt, ...args) : fmt;
    this.#sink(`${stamp()} ${level}: ${tag ? `(${tag}) ` : ''}${body}`);
  }

  dbgCtl(tag: string): DbgCtl {
    let seen = -1;
    let on = false;
    const isOn = (): boolean => {
      if (seen !== this.#version) {
        seen = this.#version;
        on = this.tagOn(tag);
      }
      return on;
    };
    const fn = ((fmt: string, ...args: unknown[]) => {
      if (isOn()) this.write('DEBUG', tag, fmt, args);
    }) as DbgCtl;
    Object.defineProperty(fn, 'on', { get: isOn });
    Object.defineProperty(fn, 'tag', { value: tag });
    return fn;
  }

  note(fmt: string, ...args: unknown[]): void {
    this.write('NOTE', null, fmt, args);
  }
  warning(fmt: string, ...args: unknown[]): void {
    this.write('WARNING', null, fmt, args);
  }
  error(fmt: string, ...args: unknown[]): void {
    this.write('ERROR', null, fmt, args);
  }
}

/** The process-wide diagnostics instance. */
export const diags = new Diags();
