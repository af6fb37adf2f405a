/**
 * The bench's own wire protocol between load clients and the sink, and the route a client dials.
 *
 * Data connections start with a 9-byte header: one kind byte (`U` upload, `D` download) and the
 * byte count N as a 64-bit big-endian integer. Upload: the client sends N bytes and the sink answers
 * `OK\n` once it has them all (completion without half-close, which proxies treat differently).
 * Download: the sink sends N bytes. Echo listeners just echo.
 */

export const CHUNK_BYTES = 64 * 1024;
export const HEADER_BYTES = 9;
export const KIND_UPLOAD = 0x55;
export const KIND_DOWNLOAD = 0x44;
export const UPLOAD_ACK = 'OK\n';

export type Direction = 'up' | 'down';

/** TLS on the first hop: files are paths to PEM files. */
export interface TlsHop {
  readonly servername: string;
  readonly ca: string;
  readonly cert: string | null;
  readonly key: string | null;
}

/** How a client reaches its target: TCP to host:port, then optional TLS, then optional CONNECT. */
export interface Route {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsHop | null;
  /** `host:port` to CONNECT to after the first hop is up, or null for a transparent path. */
  readonly connect: string | null;
}

/** The 9-byte data header. */
export function dataHeader(direction: Direction, bytes: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b[0] = direction === 'up' ? KIND_UPLOAD : KIND_DOWNLOAD;
  b.writeBigUInt64BE(BigInt(bytes), 1);
  return b;
}

/** Parse a route given as JSON on a client's command line. */
export function parseRoute(text: string): Route {
  const v = JSON.parse(text) as Partial<Route>;
  if (typeof v.host !== 'string' || typeof v.port !== 'number') throw new Error(`bad route: ${text}`);
  return { host: v.host, port: v.port, tls: v.tls ?? null, connect: v.connect ?? null };
}
