/**
 * One bridged transaction (ATS's `Bridge` in tls_bridge.cc).
 *
 * The client's CONNECT was intercepted: this object is its origin. On NET_ACCEPT it opens an
 * internal connection into the host (`api.httpConnect`) and writes `CONNECT https://<peer>`, which
 * makes the host open a TLS connection to the peer proxy. It scans the host's reply:
 * - 2xx, header complete: READY. The UA VConn (which holds the client's CONNECT header, then the
 *   client's bytes) and the outbound leg are joined with `api.tunnel`; the peer's reply to the
 *   client's CONNECT becomes the origin response the host sends the client.
 * - non-2xx: the reply (status, reason, Proxy-Status, body) is relayed to the UA VConn as the origin
 *   response, so the client gets the cause.
 * - closed, malformed or oversized before READY: `txn.statusSet` and the UA VConn is ended.
 * At SEND_RESPONSE_HDR it removes `Transfer-Encoding`, `Age` and `Proxy-Connection`; TXN_CLOSE
 * destroys both legs. Nothing here logs per chunk.
 */
import { Event, ProxyError } from '../../host/api/index.js';
import type { Api, DbgCtl, EventId, Tunnel, TunnelStats, Txn, VConn } from '../../host/api/index.js';
import { ConnectResponseScanner, MAX_REPLY_HEADER, ScanState } from './connect-response.js';
import { TlsBridgeErrorCode, bridgeError, bridgeMessage } from './errors.js';

/** The debug tag and ATS's `pitag` for the internal connection. */
export const PLUGIN_TAG = 'tls_bridge';
/** The prefix of every error line, as ATS's TSError calls. */
export const PLUGIN_NAME = 'TLS Bridge';

export const BridgeState = {
  /** Waiting for the UA VConn. */
  Pre: 'PRE',
  /** Internal CONNECT sent; waiting for the status line of its reply. */
  Open: 'OPEN',
  /** 2xx seen; waiting for the end of the reply header. */
  Ok: 'OK',
  /** The tunnel UA ⇄ peer is running. */
  Stream: 'STREAM',
  /** Non-2xx reply; relaying it to the UA as the origin response. */
  Error: 'ERROR',
  /** Closed, or failed before any usable reply. */
  Eos: 'EOS',
} as const;
export type BridgeStateT = (typeof BridgeState)[keyof typeof BridgeState];

/** Response fields ATS's tls_bridge removes before the reply reaches the client. */
export const STRIPPED_FIELDS = ['Transfer-Encoding', 'Age', 'Proxy-Connection'] as const;

/** Status for the client when the outbound leg fails before READY. */
export const FAILED_STATUS = {
  closed: { code: 502, reason: 'Tunnel Connection Failed' },
  tooLarge: { code: 502, reason: 'Tunnel Response Too Large' },
  malformed: { code: 519, reason: 'Malformed Tunnel Response' },
} as const;

export type Side = 'upstream' | 'ua';

/** What the dispatcher handles, named by ATS's events. */
export type BridgeInput =
  | { readonly event: typeof Event.NetAccept; readonly ua: VConn }
  | { readonly event: typeof Event.VconnReadReady; readonly chunk: Buffer }
  | { readonly event: typeof Event.VconnEos; readonly side: Side; readonly error?: Error }
  | { readonly event: typeof Event.HttpSendResponseHdr }
  | { readonly event: typeof Event.HttpTxnClose };

/** What every Bridge of one plugin instance shares. */
export interface BridgeEnv {
  readonly api: Api;
  readonly dbg: DbgCtl;
  /** The next id for `httpConnect` (ATS's `piid` counter). */
  nextConnectId(): number;
}

/** The internal request, byte for byte as ATS's tls_bridge writes it (`//` needed, ATS PR #7011). */
export function internalConnect(peer: string): string {
  return `CONNECT https://${peer} HTTP/1.1\r\n\r\n`;
}

export class Bridge {
  readonly #env: BridgeEnv;
  readonly #txn: Txn;
  readonly #peer: string;
  #state: BridgeStateT = BridgeState.Pre;
  #ua: VConn | null = null;
  #out: VConn | null = null;
  #tunnel: Tunnel | null = null;
  readonly #scanner = new ConnectResponseScanner();
  /** Reply bytes read before its status line was complete (relayed on a non-2xx). */
  #replyHead: Buffer[] = [];
  /** The status the client must get (ATS's stored out_response_code), or null on success. */
  #failure: { readonly code: number; readonly reason: string } | null = null;
  readonly #eosSeen: Record<Side, boolean> = { upstream: false, ua: false };
  /** Whether any byte of the peer's reply has come back through the tunnel. */
  #peerSpoke = false;
  #closed = false;

  constructor(env: BridgeEnv, txn: Txn, peer: string) {
    this.#env = env;
    this.#txn = txn;
    this.#peer = peer;
  }

  get state(): BridgeStateT {
    return this.#state;
  }

  /** The intercept's callback (ATS's NET_ACCEPT). */
  readonly accept = (ua: VConn): void => {
    this.#safe({ event: Event.NetAccept, ua });
  };

  /** The transaction hook for SEND_RESPONSE_HDR and TXN_CLOSE: dispatch, then resume exactly once. */
  readonly txnHook = (txn: Txn, event: EventId): void => {
    try {
      if (event === Event.HttpSendResponseHdr || event === Event.HttpTxnClose) this.handle({ event });
    } catch (err) {
      this.#report(err);
    } finally {
      txn.reenable(Event.HttpContinue);
    }
  };

  /** The one dispatcher. */
  handle(input: BridgeInput): void {
    switch (input.event) {
      case Event.NetAccept:
        this.#netAccept(input.ua);
        break;
      case Event.VconnReadReady:
        this.#readReady(input.chunk);
        break;
      case Event.VconnEos:
        this.#eos(input.side, input.error);
        break;
      case Event.HttpSendResponseHdr:
        this.#sendResponseHdr();
        break;
      case Event.HttpTxnClose:
        this.#env.dbg('TXN_CLOSE: cleanup');
        this.#close();
        break;
    }
  }

  #netAccept(ua: VConn): void {
    ua.on('error', (error: Error) => this.#safe({ event: Event.VconnEos, side: 'ua', error }));
    if (this.#state !== BridgeState.Pre || this.#closed) {
      ua.destroy();
      return;
    }
    this.#ua = ua;
    ua.on('end', () => this.#safe({ event: Event.VconnEos, side: 'ua' }));
    this.#env.dbg('Received UA VConn, connecting to peer %s', this.#peer);
    this.#state = BridgeState.Open;
    const out = this.#env.api.httpConnect({
      addr: this.#txn.clientAddr,
      tag: PLUGIN_TAG,
      id: this.#env.nextConnectId(),
    });
    this.#out = out;
    out.on('error', (error: Error) => this.#safe({ event: Event.VconnEos, side: 'upstream', error }));
    out.on('end', () => this.#safe({ event: Event.VconnEos, side: 'upstream' }));
    out.on('close', () => this.#safe({ event: Event.VconnEos, side: 'upstream' }));
    out.on('data', this.#onOutboundData);
    out.write(internalConnect(this.#peer));
  }

  readonly #onOutboundData = (chunk: Buffer): void => {
    this.#safe({ event: Event.VconnReadReady, chunk });
  };

  /** Scan the internal reply (OPEN → OK → READY), only before the tunnel or relay starts. */
  #readReady(chunk: Buffer): void {
    if (this.#state !== BridgeState.Open && this.#state !== BridgeState.Ok) return;
    const scanner = this.#scanner;
    const end = scanner.feed(chunk);
    if (scanner.state === ScanState.Error) {
      this.#badReply();
      return;
    }
    if (scanner.state === ScanState.Open) {
      this.#replyHead.push(chunk);
      return;
    }
    if (this.#state === BridgeState.Open) {
      this.#env.dbg('Outbound status %d', scanner.code);
      if (scanner.code < 200 || scanner.code > 299) {
        this.#relayFailure(chunk);
        return;
      }
      this.#replyHead = [];
      this.#state = BridgeState.Ok;
    }
    if (scanner.state === ScanState.Ready) {
      this.#env.dbg('Outbound ready');
      this.#stream(chunk.subarray(end));
    }
  }

  /** READY: join the UA VConn and the outbound leg; reply bytes after the header go to the UA first. */
  #stream(rest: Buffer): void {
    const { ua, out } = this.#legs();
    out.off('data', this.#onOutboundData);
    out.pause();
    this.#peerSpoke = rest.length > 0;
    out.once('data', () => {
      this.#peerSpoke = true;
    });
    this.#state = BridgeState.Stream;
    this.#tunnel = this.#env.api.tunnel(ua, out, {
      ...(rest.length > 0 ? { headToA: rest } : {}),
      onClose: (stats: TunnelStats) => {
        this.#env.dbg('Tunnel closed (%s): %d bytes to upstream, %d bytes to UA', stats.reason, stats.aToB, stats.bToA);
      },
    });
  }

  /** A non-2xx internal reply: it becomes the origin response, so the client sees its status and cause. */
  #relayFailure(chunk: Buffer): void {
    const { ua, out } = this.#legs();
    const { code, reason } = this.#scanner;
    this.#failure = { code, reason };
    this.#state = BridgeState.Error;
    this.#txn.statusSet(code, reason);
    out.off('data', this.#onOutboundData);
    ua.write(Buffer.concat([...this.#replyHead, chunk]));
    this.#replyHead = [];
    out.pipe(ua);
  }

  /** The reply's status line is malformed or its header too long: fail with ATS's 519 or a 502. */
  #badReply(): void {
    const tooLarge = this.#scanner.error === TlsBridgeErrorCode.REPLY_TOO_LARGE;
    this.#report(
      tooLarge
        ? bridgeError(TlsBridgeErrorCode.REPLY_TOO_LARGE, [this.#peer, MAX_REPLY_HEADER, this.#txn.id])
        : bridgeError(TlsBridgeErrorCode.REPLY_MALFORMED, [this.#peer, this.#txn.id]),
    );
    this.#abort(tooLarge ? FAILED_STATUS.tooLarge : FAILED_STATUS.malformed);
  }

  #eos(side: Side, error?: Error): void {
    if (!this.#eosSeen[side]) {
      this.#eosSeen[side] = true;
      const what = side === 'upstream' ? 'EOS upstream' : 'EOS user agent';
      if (error === undefined) this.#env.dbg(what);
      else this.#env.dbg('%s: %s', what, error.message);
    }
    if (this.#state === BridgeState.Stream && side === 'upstream' && !this.#peerSpoke) {
      // The tunnel broke before the peer answered (e.g. it rejected our TLS 1.3 client certificate
      // after the handshake): the host answers the client with this status.
      this.#txn.statusSet(FAILED_STATUS.closed.code, FAILED_STATUS.closed.reason);
    } else if (this.#state === BridgeState.Error && side === 'upstream') {
      // The relayed reply is over, whether or not the pipe saw an end: finish the origin response.
      if (this.#ua !== null && !this.#ua.writableEnded) this.#ua.end();
    } else if (this.#state === BridgeState.Open || this.#state === BridgeState.Ok) {
      if (side === 'upstream') {
        this.#env.dbg('%s', bridgeMessage(TlsBridgeErrorCode.OUTBOUND_CLOSED, this.#peer, this.#txn.id));
        this.#abort(FAILED_STATUS.closed);
      } else {
        this.#close();
      }
    }
  }

  /** Fail before READY: the host answers the client with this status when the UA VConn ends. */
  #abort(status: { readonly code: number; readonly reason: string }): void {
    this.#failure = status;
    this.#state = BridgeState.Eos;
    this.#txn.statusSet(status.code, status.reason);
    this.#out?.destroy();
    this.#ua?.end();
  }

  #sendResponseHdr(): void {
    this.#env.dbg('SEND_RESPONSE_HDR');
    const resp = this.#txn.clientResp;
    if (resp === null) {
      this.#env.dbg('Failed to retrieve client response');
      return;
    }
    if (this.#failure !== null) {
      resp.status = this.#failure.code;
      resp.reason = this.#failure.reason;
    }
    for (const name of STRIPPED_FIELDS) resp.delete(name);
  }

  /** Idempotent: destroys the tunnel and both legs. */
  #close(): void {
    this.#state = BridgeState.Eos;
    if (this.#closed) return;
    this.#closed = true;
    this.#tunnel?.destroy();
    this.#out?.destroy();
    this.#ua?.destroy();
  }

  #legs(): { ua: VConn; out: VConn } {
    if (this.#ua === null || this.#out === null) throw new Error(`no ${this.#ua === null ? 'UA' : 'outbound'} VConn`);
    return { ua: this.#ua, out: this.#out };
  }

  /** Run the dispatcher from a stream callback: nothing throws into the event loop. */
  #safe(input: BridgeInput): void {
    try {
      this.handle(input);
    } catch (err) {
      this.#report(err);
      if (this.#state === BridgeState.Open || this.#state === BridgeState.Ok || this.#state === BridgeState.Pre) {
        this.#abort(FAILED_STATUS.closed);
      } else {
        this.#close();
      }
    }
  }

  #report(err: unknown): void {
    const e =
      err instanceof ProxyError
        ? err
        : bridgeError(TlsBridgeErrorCode.INTERNAL, [this.#txn.id, err instanceof Error ? err.message : String(err)], err);
    this.#env.api.error('[%s] %s [%s]', PLUGIN_NAME, e.message, e.code);
  }
}
