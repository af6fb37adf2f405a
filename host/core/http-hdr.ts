/**
 * HttpHdr: the header object hooks read and write (ATS's TSMBuffer/TSMLoc pair), kept as an
 * ordered list of fields so a re-serialised header keeps the client's order.
 */
import type { HttpHdr } from '../api/types.js';

export class Hdr implements HttpHdr {
  method: string;
  url: string;
  status: number;
  reason: string;
  readonly version: string;
  /** [name, value] pairs in order. */
  #fields: [string, string][];

  constructor(init: { method?: string; url?: string; status?: number; reason?: string; version?: string; raw?: readonly string[] }) {
    this.method = init.method ?? '';
    this.url = init.url ?? '';
    this.status = init.status ?? 0;
    this.reason = init.reason ?? '';
    this.version = init.version ?? '1.1';
    this.#fields = [];
    const raw = init.raw ?? [];
    for (let i = 0; i + 1 < raw.length; i += 2) this.#fields.push([raw[i]!, raw[i + 1]!]);
  }

  /** TSHttpHdrHostGet: URL host (no port), else the Host header (no port). */
  get host(): string | null {
    const fromUrl = hostOfTarget(this.url);
    if (fromUrl) return fromUrl;
    const h = this.get('host');
    return h ? stripPort(h) : null;
  }

  get(name: string): string | undefined {
    const n = name.toLowerCase();
    for (const [k, v] of this.#fields) if (k.toLowerCase() === n) return v;
    return undefined;
  }

  getAll(name: string): string[] {
    const n = name.toLowerCase();
    return this.#fields.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  }

  set(name: string, value: string): void {
    const n = name.toLowerCase();
    const i = this.#fields.findIndex(([k]) => k.toLowerCase() === n);
    if (i < 0) {
      this.#fields.push([name, value]);
      return;
    }
    this.#fields[i] = [this.#fields[i]![0], value];
    this.#fields = this.#fields.filter(([k], j) => j <= i || k.toLowerCase() !== n);
  }

  append(name: string, value: string): void {
    this.#fields.push([name, value]);
  }

  delete(name: string): boolean {
    const n = name.toLowerCase();
    const before = this.#fields.length;
    this.#fields = this.#fields.filter(([k]) => k.toLowerCase() !== n);
    return this.#fields.length !== before;
  }

  names(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const [k] of this.#fields) {
      const n = k.toLowerCase();
      if (!seen.has(n)) {
        seen.add(n);
        out.push(k);
      }
    }
    return out;
  }

  /** The fields as a flat [name, value, ...] array (Node's rawHeaders shape). */
  raw(): string[] {
    return this.#fields.flat();
  }

  /** The response head as HTTP/1.1 bytes. */
  serializeResponse(): string {
    let s = `HTTP/${this.version} ${this.status} ${this.reason}\r\n`;
    for (const [k, v] of this.#fields) s += `${k}: ${v}\r\n`;
    return s + '\r\n';
  }

  copy(): Hdr {
    return new Hdr({ method: this.method, url: this.url, status: this.status, reason: this.reason, version: this.version, raw: this.raw() });
  }
}

function stripPort(hostport: string): string {
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    return end > 0 ? hostport.slice(1, end) : hostport;
  }
  const i = hostport.lastIndexOf(':');
  return i >= 0 && hostport.indexOf(':') === i ? hostport.slice(0, i) : hostport;
}

/** The host of an absolute URL (`http://h:1/x`, `https://h:1`) or an authority (`h:443`); null for origin form. */
function hostOfTarget(target: string): string | null {
  if (target.startsWith('/') || target === '*' || target === '') return null;
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(target);
  const rest = scheme ? target.slice(scheme[0].length) : target;
  const authority = rest.split(/[/?#]/, 1)[0] ?? '';
  const at = authority.lastIndexOf('@');
  const h = stripPort(at >= 0 ? authority.slice(at + 1) : authority);
  return h === '' ? null : h;
}
