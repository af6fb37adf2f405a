/**
 * A restartable scanner for the reply to the bridge's internal CONNECT (ATS's OPEN → OK → READY).
 *
 * Feed it the reply in chunks of any size, down to one byte. It reports the status code and reason
 * once the status line is complete, and READY once the empty line ending the header has been seen,
 * with the offset of the first byte after the header in the chunk that completed it: those bytes are
 * tunnel data (ATS drops the rest of that block; this keeps it). Lines end with LF, optionally
 * preceded by CR. A status line that is not `HTTP/x.y NNN [reason]` gives ATS's code 519; a header
 * longer than MAX_REPLY_HEADER is an error. Pure, no I/O, never throws.
 */
import { TlsBridgeErrorCode, type TlsBridgeErrorCodeT } from './errors.js';

/** The longest reply header accepted, status line and fields, terminating empty line included. */
export const MAX_REPLY_HEADER = 16 * 1024;
/** ATS's code for a reply whose status line cannot be parsed. */
export const MALFORMED_STATUS = 519;

export const ScanState = {
  /** Reading the status line. */
  Open: 'OPEN',
  /** Status known; reading header fields up to the empty line. */
  Fields: 'FIELDS',
  /** The whole header has been seen. */
  Ready: 'READY',
  /** Malformed status line or header too large; further input is ignored. */
  Error: 'ERROR',
} as const;
export type ScanStateT = (typeof ScanState)[keyof typeof ScanState];

const LF = 0x0a;
const CR = 0x0d;
const PREFIX = Buffer.from('HTTP/', 'latin1');
const STATUS_LINE_RE = /^HTTP\/\d\.\d[ \t]+([1-5]\d\d)(?:[ \t]+(.*?))?[ \t]*$/;

export class ConnectResponseScanner {
  #state: ScanStateT = ScanState.Open;
  #code = 0;
  #reason = '';
  #error: TlsBridgeErrorCodeT | null = null;
  /** Header bytes consumed so far. */
  #size = 0;
  /** Pieces of the status line while it is incomplete. */
  #statusLine: Buffer[] = [];
  /** Bytes in the current field line so far (across chunks), and the last of them. */
  #lineLen = 0;
  #lastByte = -1;

  get state(): ScanStateT {
    return this.#state;
  }
  /** The status code once the status line is complete (519 if malformed); 0 before. */
  get code(): number {
    return this.#code;
  }
  get reason(): string {
    return this.#reason;
  }
  /** Why the scanner is in ERROR, else null. */
  get error(): TlsBridgeErrorCodeT | null {
    return this.#error;
  }

  /**
   * Scan the next chunk. Returns the offset in `chunk` of the first byte after the header when this
   * chunk completes it (0 if the header was already complete), else -1.
   */
  feed(chunk: Buffer): number {
    if (this.#state === ScanState.Ready) return 0;
    let i = 0;
    if (this.#state === ScanState.Open) i = this.#scanStatusLine(chunk);
    return this.#state === ScanState.Fields ? this.#scanFields(chunk, i) : -1;
  }

  /** Consume status-line bytes; returns the offset after its LF (or chunk.length if incomplete). */
  #scanStatusLine(chunk: Buffer): number {
    const lf = chunk.indexOf(LF);
    const end = lf < 0 ? chunk.length : lf;
    for (let k = 0; k < end && this.#size + k < PREFIX.length; k++) {
      if (chunk[k] !== PREFIX[this.#size + k]) return this.#fail(TlsBridgeErrorCode.REPLY_MALFORMED, MALFORMED_STATUS);
    }
    if (this.#size + end + (lf < 0 ? 0 : 1) > MAX_REPLY_HEADER) return this.#fail(TlsBridgeErrorCode.REPLY_TOO_LARGE);
    this.#size += end;
    this.#statusLine.push(chunk.subarray(0, end));
    if (lf < 0) return chunk.length;
    this.#size += 1;
    let line = Buffer.concat(this.#statusLine).toString('latin1');
    this.#statusLine = [];
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const m = STATUS_LINE_RE.exec(line);
    if (m === null) return this.#fail(TlsBridgeErrorCode.REPLY_MALFORMED, MALFORMED_STATUS);
    this.#code = Number(m[1]);
    this.#reason = m[2] ?? '';
    this.#state = ScanState.Fields;
    return lf + 1;
  }

  /** Consume field lines from `i`; returns the offset after the header's last LF, or -1. */
  #scanFields(chunk: Buffer, i: number): number {
    while (i < chunk.length) {
      const lf = chunk.indexOf(LF, i);
      const end = lf < 0 ? chunk.length : lf;
      if (end > i) {
        this.#lineLen += end - i;
        this.#lastByte = chunk[end - 1] ?? -1;
      }
      this.#size += end - i + (lf < 0 ? 0 : 1);
      if (this.#size > MAX_REPLY_HEADER) return this.#fail(TlsBridgeErrorCode.REPLY_TOO_LARGE);
      if (lf < 0) return -1;
      const empty = this.#lineLen === 0 || (this.#lineLen === 1 && this.#lastByte === CR);
      this.#lineLen = 0;
      this.#lastByte = -1;
      if (empty) {
        this.#state = ScanState.Ready;
        return lf + 1;
      }
      i = lf + 1;
    }
    return -1;
  }

  #fail(error: TlsBridgeErrorCodeT, code = this.#code): -1 {
    this.#state = ScanState.Error;
    this.#error = error;
    this.#code = code;
    this.#statusLine = [];
    return -1;
  }
}
