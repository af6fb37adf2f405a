/** Loopback test servers on port 0 whose close() really closes (open sockets are destroyed). */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';

export interface TestServer {
  port: number;
  close(): Promise<void>;
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ListenOptions {
  /** Default 127.0.0.1; `::1` for IPv6. */
  host?: string;
}

/** Listens on `host`:0, tracks every socket, and returns the port with a close() that destroys them. */
async function listen(server: Server, opts: ListenOptions, connectionEvent = 'connection'): Promise<TestServer> {
  const sockets = new Set<Socket>();
  server.on(connectionEvent, (s: Socket) => {
    sockets.add(s);
    s.on('error', () => {}); // peers reset connections in tests on purpose
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return closing;
  };
  return { port, close };
}

/** TCP echo: every byte comes back; the client's FIN is echoed as a FIN (half-close works). */
export function echoServer(opts: ListenOptions = {}): Promise<TestServer> {
  const server = createNetServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  return listen(server, opts);
}

/** Replies `200` with body `<METHOD> <url>\n` and an `x-origin: plain` header. */
function defaultHandler(kind: string): HttpHandler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      const body = `${req.method ?? ''} ${req.url ?? ''}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-origin': kind });
      res.end(body);
    });
  };
}

/** Plain HTTP/1.1 origin; the default handler answers 200 `<METHOD> <url>\n`. */
export function httpOrigin(handler?: HttpHandler, opts: ListenOptions = {}): Promise<TestServer> {
  return listen(createHttpServer(handler ?? defaultHandler('plain')), opts);
}

export interface TlsOriginOptions extends ListenOptions {
  /** PEM file paths (as from pki). */
  cert: string;
  key: string;
  /** CA file to verify client certificates with. */
  ca?: string;
  /** Ask for a client certificate; with `ca`, a client without a valid one is refused. */
  requestCert?: boolean;
  /** Serve HTTPS with this handler (`true`: the default handler) instead of a TLS echo. */
  http?: HttpHandler | true;
}

/** What the TLS origin saw on each handshake, in order. */
export interface TlsHandshakeInfo {
  servername: string | null;
  alpn: string | null;
  authorized: boolean;
  /** The client certificate's CN, or null. */
  peerCn: string | null;
}

export interface TlsOrigin extends TestServer {
  handshakes: TlsHandshakeInfo[];
}

/** TLS origin: an echo of the decrypted bytes, or HTTPS when `http` is set. */
export async function tlsOrigin(opts: TlsOriginOptions): Promise<TlsOrigin> {
  const tlsOpts = {
    cert: readFileSync(opts.cert),
    key: readFileSync(opts.key),
    ...(opts.ca ? { ca: readFileSync(opts.ca) } : {}),
    requestCert: opts.requestCert ?? false,
    rejectUnauthorized: (opts.requestCert ?? false) && opts.ca !== undefined,
    allowHalfOpen: true,
  };
  const handshakes: TlsHandshakeInfo[] = [];
  const record = (s: TLSSocket): void => {
    const cn = s.getPeerCertificate().subject?.CN;
    handshakes.push({
      servername: typeof s.servername === 'string' ? s.servername : null,
      alpn: typeof s.alpnProtocol === 'string' ? s.alpnProtocol : null,
      authorized: s.authorized,
      peerCn: typeof cn === 'string' ? cn : null,
    });
  };
  let server: Server;
  if (opts.http) {
    server = createHttpsServer(tlsOpts, opts.http === true ? defaultHandler('tls') : opts.http);
  } else {
    server = createTlsServer(tlsOpts, (s) => s.pipe(s));
  }
  server.on('secureConnection', record);
  const base = await listen(server, opts);
  return { ...base, handshakes };
}

export interface SinkServer extends TestServer {
  /** Bytes received over every connection so far. */
  bytes(): number;
}

/**
 * Reads everything; when the client half-closes, replies `received <n>\n` (n = that connection's bytes, or
 * `reply` if given) and ends.
 */
export function sinkServer(opts: ListenOptions & { reply?: string | Buffer } = {}): Promise<SinkServer> {
  let total = 0;
  const server = createNetServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (b: Buffer) => {
      n += b.length;
      total += b.length;
    });
    s.on('end', () => s.end(opts.reply ?? `received ${n}\n`));
  });
  return listen(server, opts).then((base) => ({ ...base, bytes: () => total }));
}
