/**
 * An in-process duplex pair (ATS's PluginVC): bytes written to one end are read from the other.
 * No port, no syscall; each end looks enough like a net.Socket for `http.Server` (emit
 * 'connection') and `http.request({ createConnection })`.
 *
 * - Back-pressure: a write is acknowledged once the peer's readable buffer accepts it; when the
 *   peer's buffer is full the write waits until the peer reads, so a writer sees `write()` false
 *   and 'drain' exactly as with a socket. At most about two high-water marks are buffered per
 *   direction.
 * - Half-close: `end()` on one end is 'end' on the other, which can still write back.
 * - Close, as TCP does it: `destroy()` is a FIN when this end has read everything sent to it
 *   (the peer reads what it was sent, then 'end'; its later writes fail with EPIPE), and a RST
 *   when bytes sent to this end are still unread (the peer is destroyed with ECONNRESET).
 *   `resetAndDestroy()` always resets.
 *
 * Chunks are handed to the peer without copying: do not modify a Buffer after writing it.
 */
import { Duplex } from 'node:stream';

/** An address as `socket.address()` reports it. */
export interface VConnAddr {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

/** Addresses one end reports; a side left out defaults to the peer's opposite side. */
export interface VConnEndOptions {
  readonly remote?: VConnAddr;
  readonly local?: VConnAddr;
}

export interface VConnPairOptions {
  /** Readable and writable high-water mark of each end, bytes (default 64 KiB). */
  readonly highWaterMark?: number;
  readonly a?: VConnEndOptions;
  readonly b?: VConnEndOptions;
}

const DEFAULT_HWM = 64 * 1024;

type WriteCb = (err?: Error | null) => void;

function sysError(code: 'ECONNRESET' | 'EPIPE', message: string): Error {
  return Object.assign(new Error(message), code === 'EPIPE' ? { code, errno: -32, syscall: 'write' } : { code, errno: -104, syscall: 'read' });
}

/** One end of a pair. A Duplex with the socket members Node's http uses. */
export class VConnEnd extends Duplex {
  #peer: VConnEnd | null = null;
  /** Our write waiting for the peer to read (its buffer was full). */
  #held: WriteCb | null = null;
  /** We pushed EOF to the peer. */
  #eofSent = false;
  /** The peer closed without a reset: our writes have nowhere to go. */
  #peerGone = false;
  /** Destroy as a reset whatever is unread. */
  #reset = false;
  #timer: NodeJS.Timeout | null = null;
  #refed = true;
  #remote: VConnAddr | undefined;
  #local: VConnAddr | undefined;
  bytesRead = 0;
  bytesWritten = 0;
  /** net.Socket compatibility: a pair end is connected from birth. */
  readonly connecting = false;

  constructor(hwm: number, addrs: { remote: VConnAddr | undefined; local: VConnAddr | undefined }) {
    super({ allowHalfOpen: true, highWaterMark: hwm, decodeStrings: true });
    this.#remote = addrs.remote;
    this.#local = addrs.local;
  }

  /** The other end of this pair (null only while being made). */
  get peerEnd(): VConnEnd | null {
    return this.#peer;
  }

  /** Link two ends (once, by `createVConnPair`). */
  static link(a: VConnEnd, b: VConnEnd): void {
    a.#peer = b;
    b.#peer = a;
  }

  get remoteAddress(): string | undefined {
    return this.#remote?.address;
  }
  get remotePort(): number | undefined {
    return this.#remote?.port;
  }
  get remoteFamily(): string | undefined {
    return this.#remote?.family;
  }
  get localAddress(): string | undefined {
    return this.#local?.address;
  }
  get localPort(): number | undefined {
    return this.#local?.port;
  }
  get localFamily(): string | undefined {
    return this.#local?.family;
  }
  address(): VConnAddr | Record<string, never> {
    return this.#local ?? {};
  }

  /** As net.Socket: emit 'timeout' after `ms` without reads or writes (0 disables). */
  setTimeout(ms: number, cb?: () => void): this {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (ms > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit('timeout'), ms);
      if (!this.#refed) this.#timer.unref();
    }
    if (cb !== undefined) {
      if (ms > 0) this.once('timeout', cb);
      else this.removeListener('timeout', cb);
    }
    return this;
  }
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }
  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this;
  }
  /** As net.Socket: whether a pending `setTimeout` keeps the event loop alive (it does by default). */
  ref(): this {
    this.#refed = true;
    this.#timer?.ref();
    return this;
  }
  unref(): this {
    this.#refed = false;
    this.#timer?.unref();
    return this;
  }
  /** As net.Socket: close with a reset (the peer gets ECONNRESET). */
  resetAndDestroy(): this {
    this.#reset = true;
    return this.destroy();
  }
  /** As net.Socket: end, then destroy once everything is written. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  #touch(): void {
    this.#timer?.refresh();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: WriteCb): void {
    const p = this.#peer;
    if (p === null || this.#peerGone || p.destroyed) {
      cb(sysError('EPIPE', 'write EPIPE: the peer of this virtual connection is closed'));
      return;
    }
    this.bytesWritten += chunk.length;
    this.#touch();
    if (p.#deliver(chunk)) cb();
    else this.#held = cb;
  }

  /** Push bytes from the peer; false when our readable buffer is over its high-water mark. */
  #deliver(chunk: Buffer): boolean {
    this.bytesRead += chunk.length;
    this.#touch();
    return this.push(chunk);
  }

  override _read(): void {
    const p = this.#peer;
    if (p === null) return;
    const cb = p.#held;
    if (cb !== null) {
      p.#held = null;
      cb();
    }
  }

  override _final(cb: WriteCb): void {
    const p = this.#peer;
    this.#eofSent = true;
    if (p !== null && !p.destroyed && !this.#peerGone) p.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const held = this.#held;
    this.#held = null;
    const p = this.#peer;
    if (p !== null && !p.destroyed) {
      const unread = this.readableLength > 0 || p.#held !== null;
      p.#peerClosed(this.#reset || unread, this.#eofSent);
    }
    if (held !== null) held(err ?? sysError('EPIPE', 'write EPIPE: virtual connection destroyed'));
    cb(err);
  }

  /** The peer was destroyed: a reset destroys us, else we read to EOF and our writes fail. */
  #peerClosed(reset: boolean, eofSent: boolean): void {
    if (reset) {
      this.destroy(sysError('ECONNRESET', 'read ECONNRESET: the peer of this virtual connection was reset'));
      return;
    }
    // Not a reset, so nothing of ours was unread and no write of ours is waiting.
    if (!eofSent) this.push(null);
    this.#peerGone = true;
  }
}

/**
 * Two linked ends. Each end's `remote` defaults to the other end's `local` and vice versa, so
 * `createVConnPair({ a: { remote: clientAddr } })` makes end b report `clientAddr` as local.
 */
export function createVConnPair(opts: VConnPairOptions = {}): [VConnEnd, VConnEnd] {
  const hwm = opts.highWaterMark ?? DEFAULT_HWM;
  const a = new VConnEnd(hwm, { remote: opts.a?.remote ?? opts.b?.local, local: opts.a?.local ?? opts.b?.remote });
  const b = new VConnEnd(hwm, { remote: opts.b?.remote ?? opts.a?.local, local: opts.b?.local ?? opts.a?.remote });
  VConnEnd.link(a, b);
  return [a, b];
}
