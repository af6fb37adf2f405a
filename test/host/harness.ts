/**
 * In-process host fixtures for the host tests: a Host on a temp config dir with test hooks, and a
 * raw HTTP/1.1 client that reads responses off a real socket byte-exactly.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import type { Duplex } from 'node:stream';
import type { Api } from '../../host/api/index.js';
import { formatDiagnostic, loadConfig } from '../../host/config/load.js';
import { makeApi } from '../../host/core/api-impl.js';
import { Host } from '../../host/core/host.js';
import type { Bound } from '../../host/core/listeners.js';
import { makeConfigDir } from '../helpers/config-dir.js';
import type { ConfigDirSpec } from '../helpers/config-dir.js';

export interface StartedHost {
  readonly host: Host;
  readonly bound: readonly Bound[];
  /** The first bound port of a kind (default: any). */
  port(kind?: Bound['kind']): number;
}

export interface StartOptions {
  readonly hookDeadlineMs?: number;
  /** Register hooks as plugin `name` (its key) before the global hooks are locked. */
  readonly plugins?: Readonly<Record<string, (api: Api) => void>>;
}

/** A server_ports value: one ephemeral port per kind, bound to 127.0.0.1 only. */
export function loopbackPorts(...kinds: Bound['kind'][]): string {
  return kinds.map((k) => `0${k === 'http' ? '' : `:${k}`}:ip-in=127.0.0.1`).join(' ');
}

/** Records every test host starts from: one ephemeral plain port, loopback only, short timeouts. */
const BASE_RECORDS: Readonly<Record<string, unknown>> = {
  'http.server_ports': loopbackPorts('http'),
  'http.connect_ports': '*',
  'url_remap.remap_required': 0,
  'http.connect_attempts_timeout': 3,
  'ssl.handshake_timeout_in': 3,
};

/** Teardown: sessions get this long to finish (tests close their clients first), then are closed. */
const DRAIN_MS = 1000;
/** How long `host.stop(DRAIN_MS)` may take in a teardown. */
const STOP_LIMIT_MS = 3000;

/**
 * `host.stop(drainMs)`, failing (instead of hanging the test file) when it does not resolve
 * within `limitMs`: stop must force-close whatever is still open at the drain deadline.
 */
export async function stopWithin(host: Host, drainMs: number, limitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, limitMs, false);
  });
  const stopped = await Promise.race([host.stop(drainMs).then(() => true), late]);
  clearTimeout(timer);
  if (!stopped) throw new Error(`host.stop(${drainMs}) did not resolve within ${limitMs} ms (a connection was left open)`);
}

/** Loads `spec` into a temp dir, starts a Host on it; everything is stopped in `t.after`. */
export async function startHost(t: TestContext, spec: ConfigDirSpec, opts: StartOptions = {}): Promise<StartedHost> {
  const cd = await makeConfigDir({ ...spec, records: { ...BASE_RECORDS, ...spec.records } });
  t.after(() => cd.cleanup());
  const loaded = loadConfig(cd.dir, {});
  if (!loaded.config) throw new Error(`config invalid:\n${loaded.diagnostics.map(formatDiagnostic).join('\n')}`);
  const host = new Host(loaded.config, { hookDeadlineMs: opts.hookDeadlineMs ?? 2000 });
  t.after(() => stopWithin(host, DRAIN_MS, STOP_LIMIT_MS));
  for (const [name, setup] of Object.entries(opts.plugins ?? {})) setup(makeApi(name, host.ctx));
  host.ctx.hooks.lock();
  const bound = await host.listen();
  return {
    host,
    bound,
    port: (kind) => {
      const b = bound.find((x) => kind === undefined || x.kind === kind);
      if (!b) throw new Error(`no ${kind ?? ''} port bound`);
      return b.port;
    },
  };
}

export interface RawResponse {
  readonly statusLine: string;
  readonly status: number;
  /** Lower-case names; repeated fields joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Polls `cond` until true or `ms` passes (then throws naming `what`). */
export async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A client connection that buffers what it receives and reads HTTP responses off the front. */
export class Conn {
  /** A socket, a TLS socket, or a virtual connection (`api.httpConnect`, an Intercept). */
  readonly socket: Duplex;
  #buf = Buffer.alloc(0);
  #ended = false;
  #closed = false;
  #wake: (() => void) | null = null;

  constructor(socket: Duplex) {
    this.socket = socket;
    socket.on('error', () => undefined);
    socket.on('data', (b: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, b]);
      this.#poke();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#poke();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#poke();
    });
  }

  static async open(port: number, host = '127.0.0.1'): Promise<Conn> {
    const s = net.connect({ port, host, allowHalfOpen: true });
    const c = new Conn(s);
    await once(s, 'connect');
    return c;
  }

  /** True once the peer ended its side (or the socket closed). */
  get ended(): boolean {
    return this.#ended || this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes received and not yet consumed. */
  get pending(): Buffer {
    return this.#buf;
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Wait until `cond` holds, re-checked on every arrival, end and close. */
  async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; received ${JSON.stringify(this.#buf.toString('latin1').slice(0, 300))}`);
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, Math.min(left, 50));
      });
      clearTimeout(timer);
    }
  }

  /** Consume exactly `n` bytes. */
  async bytes(n: number, ms = 5000): Promise<Buffer> {
    await this.until(() => this.#buf.length >= n || this.ended, ms, `${n} bytes`);
    if (this.#buf.length < n) throw new Error(`connection ended after ${this.#buf.length} of ${n} bytes`);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Everything until the peer ends its side. */
  async rest(ms = 5000): Promise<Buffer> {
    await this.until(() => this.ended, ms, 'the end of the connection');
    const out = this.#buf;
    this.#buf = Buffer.alloc(0);
    return out;
  }

  /**
   * Consume one response. `connect`: the reply to a CONNECT, whose 2xx has no body (what follows
   * is tunnel data). Bodies follow Content-Length, chunked coding, or the end of the connection.
   */
  async response(opts: { connect?: boolean; ms?: number } = {}): Promise<RawResponse> {
    const ms = opts.ms ?? 5000;
    await this.until(() => this.#buf.includes('\r\n\r\n') || this.ended, ms, 'a response header');
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`connection ended without a response header; received ${JSON.stringify(this.#buf.toString('latin1'))}`);
    const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
    this.#buf = this.#buf.subarray(end + 4);
    const statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const n = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[n] = n in headers ? `${headers[n]}, ${v}` : v;
    }
    let body: Buffer;
    if ((opts.connect && status < 300) || status < 200 || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (headers['content-length'] !== undefined) body = await this.bytes(Number(headers['content-length']), ms);
    else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = await this.#chunked(ms);
    else body = await this.rest(ms);
    return { statusLine, status, headers, body };
  }

  async #chunked(ms: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      await this.until(() => this.#buf.includes('\r\n') || this.ended, ms, 'a chunk size');
      const eol = this.#buf.indexOf('\r\n');
      if (eol < 0) throw new Error('connection ended inside a chunked body');
      const size = parseInt(this.#buf.subarray(0, eol).toString('latin1'), 16);
      this.#buf = this.#buf.subarray(eol + 2);
      if (size === 0) {
        await this.bytes(2, ms);
        return Buffer.concat(parts);
      }
      parts.push(await this.bytes(size, ms));
      await this.bytes(2, ms);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Open a connection, send `request`, read one response; the connection is destroyed after. */
export async function exchange(port: number, request: string | Buffer, opts: { connect?: boolean; ms?: number } = {}): Promise<RawResponse> {
  const c = await Conn.open(port);
  try {
    c.write(request);
    return await c.response(opts);
  } finally {
    c.close();
  }
}

/** `GET url` with `Host`, as a proxy client sends it. */
export function getRequest(url: string, host: string, extra = ''): string {
  return `GET ${url} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
}

/** An error reply: its status line, a Proxy-Status naming tsproxy and `type`, a body of Content-Length bytes. */
export function assertFailure(res: RawResponse, statusLine: string, type: string): void {
  assert.equal(res.statusLine, statusLine);
  assert.match(res.headers['proxy-status'] ?? '', new RegExp(`^tsproxy; error=${type}(;|$)`));
  assert.equal(res.body.length, Number(res.headers['content-length']));
}
