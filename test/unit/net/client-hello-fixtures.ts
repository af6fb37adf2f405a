/**
 * ClientHello bytes for tests: captured from a real Node TLS client, re-fragmented into records,
 * or built field by field for malformed cases.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

export interface CaptureOptions {
  readonly servername?: string;
  readonly alpn?: readonly string[];
  readonly minVersion?: tls.SecureVersion;
  readonly maxVersion?: tls.SecureVersion;
}

/**
 * The first TLS record a `tls.connect` writes (Node sends its ClientHello in one record), read by
 * a plain TCP server using only the 5-byte record header, never the parser under test.
 */
export async function captureClientHello(opts: CaptureOptions = {}): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const got = new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (s: net.Socket) => {
        let buf = Buffer.alloc(0);
        s.on('error', reject);
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
            resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
            s.destroy();
          }
        });
      });
    });
    const client = tls.connect({
      host: '127.0.0.1',
      port,
      servername: opts.servername ?? '',
      ALPNProtocols: opts.alpn ? [...opts.alpn] : undefined,
      minVersion: opts.minVersion,
      maxVersion: opts.maxVersion,
    });
    client.on('error', () => {}); // the server hangs up: expected
    try {
      return await got;
    } finally {
      client.destroy();
    }
  } finally {
    server.close();
  }
}

/** Split the handshake bytes of `hello` (one or more records) into records of at most `size` bytes. */
export function fragment(hello: Buffer, size: number | ((i: number) => number)): Buffer {
  const payload: Buffer[] = [];
  for (let p = 0; p < hello.length; ) {
    const len = hello.readUInt16BE(p + 3);
    payload.push(hello.subarray(p + 5, p + 5 + len));
    p += 5 + len;
  }
  const hs = Buffer.concat(payload);
  const out: Buffer[] = [];
  for (let p = 0, i = 0; p < hs.length; i++) {
    const n = Math.max(1, Math.min(typeof size === 'number' ? size : size(i), hs.length - p));
    out.push(record(hs.subarray(p, p + n), hello.readUInt16BE(1)));
    p += n;
  }
  return Buffer.concat(out);
}

/** A handshake record (type 22) around `payload`. */
export function record(payload: Buffer, version = 0x0301, type = 22): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt16BE(version, 1);
  h.writeUInt16BE(payload.length, 3);
  return Buffer.concat([h, payload]);
}

export const u8 = (n: number): Buffer => Buffer.from([n]);
export const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
/** A vector with a 1- or 2-byte length prefix. */
export const vec = (lenBytes: 1 | 2, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([lenBytes === 1 ? u8(body.length) : u16(body.length), body]);
};
export const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec(2, data)]);
/** server_name extension data with the given (name_type, name) entries. */
export const sniData = (...entries: [number, Buffer | string][]): Buffer =>
  vec(2, ...entries.map(([t, n]) => Buffer.concat([u8(t), vec(2, Buffer.from(n))])));
export const alpnData = (...names: (string | Buffer)[]): Buffer => vec(2, ...names.map((n) => vec(1, Buffer.from(n))));

export interface HelloParts {
  readonly version?: number;
  readonly sessionId?: Buffer;
  /** Raw cipher_suites vector content (2 bytes each). */
  readonly suites?: Buffer;
  readonly compression?: Buffer;
  /** Encoded extensions (see `ext`); null: no extensions block at all. */
  readonly extensions?: readonly Buffer[] | null;
  /** Appended inside the handshake message after the extensions block. */
  readonly trailing?: Buffer;
}

/** A ClientHello handshake message (4-byte header + body), not yet in a record. */
export function helloMessage(p: HelloParts = {}): Buffer {
  const body = Buffer.concat([
    u16(p.version ?? 0x0303),
    Buffer.alloc(32, 7),
    vec(1, p.sessionId ?? Buffer.alloc(0)),
    vec(2, p.suites ?? u16(0x1301)),
    vec(1, p.compression ?? u8(0)),
    p.extensions === null ? Buffer.alloc(0) : vec(2, ...(p.extensions ?? [])),
    p.trailing ?? Buffer.alloc(0),
  ]);
  const h = Buffer.alloc(4);
  h[0] = 1;
  h.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([h, body]);
}

/** A ClientHello in a single record. */
export const helloRecord = (p: HelloParts = {}): Buffer => record(helloMessage(p));

/** A ClientHello in records of at most 16 KiB (for messages larger than one record). */
export const helloRecords = (p: HelloParts = {}): Buffer => fragment(bigRecord(helloMessage(p)), 16384);

/** One oversized pseudo-record holding `payload` (only as input to `fragment`, which re-frames it). */
function bigRecord(payload: Buffer): Buffer {
  // fragment() reads the 16-bit length of each record, so chain records of at most 65535 bytes.
  const parts: Buffer[] = [];
  for (let p = 0; p < payload.length; p += 65535) parts.push(record(payload.subarray(p, p + 65535)));
  return Buffer.concat(parts);
}
