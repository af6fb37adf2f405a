/**
 * Bounded ClientHello peek on an accepted socket (Envoy's tls_inspector, mitmproxy's peek and
 * replay). Node has no MSG_PEEK: the bytes are read, kept unchanged in `raw`, and the caller
 * replays them, with `socket.unshift(raw)` before TLS termination or by writing them upstream.
 *
 * One exit, `done()`: it clears the timer, removes every listener the peek added and pauses the
 * socket, so no byte is lost between the peek and the caller. The peek never throws and never
 * closes the socket; after it the caller must have its own 'error' listener on the socket.
 */
import type { Socket } from 'node:net';
import { parseClientHello } from './client-hello.js';
import type { ClientHello, ScanPoint } from './client-hello.js';

export const PEEK_DEFAULT_MAX_BYTES = 16 * 1024;
/** Hard cap (Envoy's TLS_MAX_CLIENT_HELLO). */
export const PEEK_MAX_BYTES = 64 * 1024;

export interface PeekOptions {
  /** Bytes to buffer at most before giving up (default 16 KiB, at most 64 KiB). */
  readonly maxBytes?: number;
  /** Time allowed for the whole ClientHello to arrive. */
  readonly timeoutMs: number;
}

export type PeekFailure = 'too_large' | 'timeout' | 'invalid' | 'closed';

export type PeekResult =
  | { readonly kind: 'hello'; readonly hello: ClientHello; readonly raw: Buffer }
  | { readonly kind: PeekFailure; readonly raw: Buffer; readonly reason: string };

/**
 * Read from `socket` until the ClientHello parses (`hello`) or is malformed (`invalid`), `maxBytes`
 * are buffered without a complete one (`too_large`), `timeoutMs` passes (`timeout`), or the client
 * closes or errors (`closed`). `raw` holds every byte read, in order. Only the first `maxBytes` are
 * parsed, so the outcome does not depend on how the bytes were segmented.
 */
export function peekClientHello(socket: Socket, opts: PeekOptions): Promise<PeekResult> {
  const maxBytes = Math.max(1, Math.min(opts.maxBytes ?? PEEK_DEFAULT_MAX_BYTES, PEEK_MAX_BYTES));
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let len = 0;
    let resume: ScanPoint | undefined;
    let finished = false;
    const raw = (): Buffer => buf.subarray(0, len);

    const done = (result: PeekResult): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      resolve(result);
    };
    const fail = (kind: PeekFailure, reason: string): void => done({ kind, raw: raw(), reason });

    const append = (chunk: Buffer): void => {
      if (len === 0) {
        buf = chunk; // the usual case: the whole ClientHello in one read, no copy
      } else {
        if (len + chunk.length > buf.length) {
          // never writes into the first chunk: it is full (buf.length === len) until replaced here
          const grown = Buffer.allocUnsafe(Math.max(2 * buf.length, len + chunk.length, 4096));
          buf.copy(grown, 0, 0, len);
          buf = grown;
        }
        chunk.copy(buf, len);
      }
      len += chunk.length;
    };

    const onData = (chunk: Buffer): void => {
      append(chunk);
      const view = len > maxBytes ? buf.subarray(0, maxBytes) : raw();
      const r = parseClientHello(view, resume);
      if (r.kind === 'ok') done({ kind: 'hello', hello: r.hello, raw: raw() });
      else if (r.kind === 'invalid') fail('invalid', r.reason);
      else if (len >= maxBytes) fail('too_large', `no complete ClientHello in ${maxBytes} bytes`);
      else resume = r.resume;
    };
    const onEnd = (): void => fail('closed', `client closed after ${len} bytes of ClientHello`);
    const onClose = (): void => fail('closed', `connection closed after ${len} bytes of ClientHello`);
    const onError = (err: NodeJS.ErrnoException): void => fail('closed', `client error ${err.code ?? err.message}`);

    const timer = setTimeout(() => fail('timeout', `no complete ClientHello within ${opts.timeoutMs} ms`), opts.timeoutMs);
    if (socket.destroyed || socket.readableEnded) {
      fail('closed', 'connection already closed');
      return;
    }
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.resume();
  });
}
