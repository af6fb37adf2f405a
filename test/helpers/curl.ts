/** The real curl, for tests that want an independent HTTP client. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './tools.js';

/** Proxy variables a developer's environment may set; curl must not pick them up behind a test's back. */
const PROXY_ENV = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY'];

export interface CurlOptions {
  /** curl's `--max-time`, in seconds (default 10); the process is killed 2 s after it. */
  maxTimeS?: number;
  /** Written to curl's stdin (for `--data-binary @-`, `-T -`). */
  input?: string | Buffer;
}

export interface CurlResponse {
  /** curl's exit code (0 ok, 7 connect failed, 28 timeout, 35/60 TLS, 56 recv failure...), null if killed. */
  exitCode: number | null;
  /** The final response's status line, e.g. `HTTP/1.1 200 OK`, or '' when none arrived. */
  statusLine: string;
  /** The final response's status code, or 0 when none arrived. */
  status: number;
  /** The final response's headers, names lower-cased, repeated fields joined with `, `. */
  headers: Record<string, string>;
  /** Every header block received, in order (a proxy's CONNECT reply and 1xx replies come before the final one). */
  headerBlocks: string[];
  body: Buffer;
  stderr: string;
}

/** Splits the `-D` dump into header blocks (each starts with `HTTP/`, ends at an empty line). */
function headerBlocks(dump: string): string[] {
  return dump
    .split(/\r\n\r\n/)
    .map((b) => b.replace(/^(\r\n)+/, ''))
    .filter((b) => b.startsWith('HTTP/'));
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

/**
 * Runs `curl -sS --max-time N -D FILE ARGS`: headers are dumped to a temp file, not mixed into stdout (`-D -`),
 * so a body that looks like a header block is never misread. (curl 7.88 crashes when `-D` names a socket such as
 * `/dev/fd/3`, hence the file.) Proxy environment variables are removed; pass `-x` explicitly.
 */
export async function curl(args: readonly string[], opts: CurlOptions = {}): Promise<CurlResponse> {
  const maxTimeS = opts.maxTimeS ?? 10;
  const env = Object.fromEntries(PROXY_ENV.map((k) => [k, undefined]));
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-curl-'));
  const dump = join(dir, 'headers');
  try {
    const r = await run('curl', ['-sS', '--max-time', String(maxTimeS), '-D', dump, ...args], {
      timeoutMs: maxTimeS * 1000 + 2000,
      env,
      ...(opts.input === undefined ? {} : { input: opts.input }),
    });
    const blocks = headerBlocks(existsSync(dump) ? readFileSync(dump, 'latin1') : '');
    const last = blocks.at(-1) ?? '';
    const statusLine = last.split('\r\n')[0] ?? '';
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine)?.[1] ?? 0);
    return { exitCode: r.code, statusLine, status, headers: parseHeaders(last), headerBlocks: blocks, body: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
