/**
 * The plugin-facing types. Names follow ATS in camelCase; each method's doc opens with the
 * ATS call it mirrors (`@ats`) and its preconditions.
 */
import type { Duplex } from 'node:stream';
import type { DbgCtl } from '../diags.js';
import type { EventId, HttpHookId, TxnCntlT, VConnHookIdT } from './events.js';

export type { DbgCtl };

/** Client or server address as ATS reports it (`TSHttpTxnClientAddrGet`). */
export interface Addr {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

/**
 * An HTTP header (request or response) as hooks see it (`TSMBuffer` + `TSMLoc`).
 * Field names compare case-insensitively; `set` replaces every field of that name.
 */
export interface HttpHdr {
  /** Request only. `TSHttpHdrMethodGet`. */
  readonly method: string;
  /** Request only: the request target as received (`CONNECT host:port`, absolute or origin form). */
  url: string;
  /** `TSHttpHdrHostGet`: URL host without the port, falling back to the Host header; null if neither. */
  readonly host: string | null;
  /** Response only (0 on a request). `TSHttpHdrStatusGet/Set`. */
  status: number;
  /** Response only. `TSHttpHdrReasonGet/Set`. */
  reason: string;
  /** `1.1` or `1.0`. */
  readonly version: string;
  get(name: string): string | undefined;
  /** All values of a field, in order. */
  getAll(name: string): string[];
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  /** `TSMimeHdrFieldDestroy` for every field of that name; true if one existed. */
  delete(name: string): boolean;
  /** Field names in order, as received (first occurrence). */
  names(): string[];
}

/** Per-transaction plugin data: augment this interface to type `txn.arg()` (as hono's ContextVariableMap). */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface TxnArgMap {}

export type HttpResumeEvent = 60000 | 60001; // Event.HttpContinue | Event.HttpError

/** A client session: one inbound connection (real or virtual). `TSHttpSsn`. */
export interface Ssn {
  readonly id: number;
  readonly clientAddr: Addr;
  readonly localPort: number;
  /** True for a session opened by `api.httpConnect`. */
  readonly isInternal: boolean;
  /** `TSHttpSsnHookAdd`: a hook for every transaction of this session (and SSN_CLOSE). */
  hookAdd(id: HttpHookId, hook: Hook): void;
  /** `TSHttpSsnReenable`: resume after SSN_START / SSN_CLOSE. Exactly once per hook call. */
  reenable(ev: HttpResumeEvent): void;
}

/** A transaction: one request and its response. `TSHttpTxn`. */
export interface Txn {
  /** `TSHttpTxnIdGet`. Unique in the process. */
  readonly id: number;
  readonly ssn: Ssn;
  /** `TSHttpTxnIsInternal`: true when the session was opened by `api.httpConnect`. */
  readonly isInternal: boolean;
  /** Plugin tag and id given to `httpConnect` (ATS `pitag`/`piid`), or null. */
  readonly pluginTag: string | null;
  readonly pluginId: number | null;
  /** `TSHttpTxnClientAddrGet`. */
  readonly clientAddr: Addr;
  /** `TSHttpTxnClientReqGet`. Writable until the request is sent upstream. */
  readonly clientReq: HttpHdr;
  /** `TSHttpTxnServerRespGet`: the origin's response, from READ_RESPONSE_HDR on; else null. */
  readonly serverResp: HttpHdr | null;
  /** `TSHttpTxnClientRespGet`: the response the client will get, at SEND_RESPONSE_HDR; else null. */
  readonly clientResp: HttpHdr | null;
  /** `TSHttpTxnHookAdd`: a hook for this transaction only (may be added from inside a hook). */
  hookAdd(id: HttpHookId, hook: Hook): void;
  /**
   * `TSHttpTxnReenable`: resume the transaction. Exactly once per hook call, possibly later.
   * A second call throws PXY_ERR_TXN_REENABLE_TWICE; none before the hook deadline fails the
   * transaction with PXY_ERR_HOOK_TIMEOUT. HttpError sends `500 INKApi Error` unless a status
   * was set with `statusSet`.
   */
  reenable(ev: HttpResumeEvent): void;
  /**
   * `TSHttpTxnIntercept`: the plugin becomes the origin. Only from READ_REQUEST_HDR, only once.
   * `onAccept` (ATS's NET_ACCEPT) receives a virtual connection: read the client's request from it
   * (as HTTP/1.1 bytes, the header first) and write a full response; for a CONNECT, bytes after a
   * 2xx response header are tunnel data to the client.
   */
  intercept(onAccept: (vc: VConn) => void): void;
  /** `TSHttpTxnCntlSet`. */
  cntlSet(c: TxnCntlT, on: boolean): void;
  /** `TSHttpTxnStatusSet`: the status (and reason) of an error reply this transaction will send. */
  statusSet(status: number, reason?: string): void;
  /** Typed per-transaction data (`TSUserArgSet/Get`). */
  argSet<K extends keyof TxnArgMap>(key: K, value: TxnArgMap[K]): void;
  argGet<K extends keyof TxnArgMap>(key: K): TxnArgMap[K] | undefined;
}

/**
 * A hook: called with the transaction (or session, for SSN_START/SSN_CLOSE) and the event.
 * Must resume with `reenable` exactly once. A handler that returns a thenable is reported as
 * PXY_ERR_HOOK_ASYNC (use `api.asyncHook`).
 */
export type Hook = (subject: Txn & Ssn, event: EventId) => void;
export type TxnHook = (txn: Txn, event: EventId) => void;
export type SsnHook = (ssn: Ssn, event: EventId) => void;

/**
 * A virtual or real connection, as a Node Duplex (back-pressure and half-close as a socket).
 * `TSVConn`: `write`/`end` are TSVConnWrite/TSVConnShutdown(write), reading is TSVConnRead,
 * `destroy` is TSVConnClose.
 */
export type VConn = Duplex;

/** Where a VConn tunnel goes. */
export interface TunnelTarget {
  readonly host: string;
  readonly port: number;
  /**
   * The port came from the connection (`{inbound_local_port}`, or no port given): as in ATS,
   * proxy.config.http.connect_ports then applies. Static ports are the config's own choice.
   */
  readonly dynamicPort?: boolean;
}

/** An inbound TLS connection at VCONN_START / SSL_CLIENT_HELLO / VCONN_CLOSE. */
export interface TlsVConn {
  readonly id: number;
  readonly clientAddr: Addr;
  readonly localAddr: Addr;
  /** SNI from the ClientHello (lower case, trailing dot removed); null before SSL_CLIENT_HELLO or when absent. */
  readonly sni: string | null;
  /** ALPN protocol names offered, in order; empty before SSL_CLIENT_HELLO. */
  readonly alpn: readonly string[];
  /** The raw ClientHello bytes as received (all TLS records), or null before SSL_CLIENT_HELLO. */
  readonly clientHello: Buffer | null;
  /**
   * `TSVConnReenable` / `TSVConnReenableEx(ERROR)`: exactly once per hook call. `tunnel`,
   * `forward` and `reject` decide and resume in one call; a later `reenable` is then ignored.
   */
  reenable(ok?: boolean): void;
  /**
   * `TSVConnTunnel`: make this connection a blind tunnel to `target` (default: the local port on
   * the SNI host). The buffered ClientHello is replayed byte for byte. Outbound ip_allow and
   * connect_ports apply; a target that is this proxy is refused (Cycle Detected).
   */
  tunnel(target: TunnelTarget): void;
  /**
   * Terminate TLS here and send the plaintext to `target` (sni.yaml forward_route), or, with
   * `tls: true`, re-encrypt to it verifying with proxy.config.ssl.client.* (partial_blind_route).
   */
  forward(target: TunnelTarget, opts?: { tls?: boolean; alpn?: readonly string[] }): void;
  /** Close with a TLS alert (e.g. an ip_allow reject). */
  reject(reason: string): void;
}
export type VConnHook = (vc: TlsVConn, hook: VConnHookIdT) => void;

/** Options for `api.httpConnect`. */
export interface HttpConnectOptions {
  /** The client address the new transaction reports (ip_allow, logs). */
  readonly addr: Addr;
  /** ATS `pitag`. */
  readonly tag?: string;
  /** ATS `piid`. */
  readonly id?: number;
}

/** Counters a tunnel reports when it closes. */
export interface TunnelStats {
  /** Bytes copied a → b and b → a. */
  readonly aToB: number;
  readonly bToA: number;
  /** Why it ended: both sides finished, a timeout, or an error on one side. */
  readonly reason: 'done' | 'timeout' | 'error' | 'destroyed';
  readonly error?: Error;
}

export interface TunnelOptions {
  /** Inactivity timeout in ms (0: none). Defaults to transaction_no_activity_timeout_in. */
  readonly idleTimeoutMs?: number;
  /** Bytes to write to b before relaying a → b (e.g. a replayed ClientHello or CONNECT head). */
  readonly headToB?: Buffer;
  /** Bytes to write to a before relaying b → a. */
  readonly headToA?: Buffer;
  readonly onClose?: (stats: TunnelStats) => void;
}

export interface Tunnel {
  readonly closed: Promise<TunnelStats>;
  destroy(err?: Error): void;
}

/** Read-only view of the records in force. */
export interface Records {
  /** The value of a record (`TSMgmtStringGet`/`IntGet`), or undefined if tsproxy does not know it. */
  get(name: string): string | number | undefined;
}

/** What `init` receives. `TSPluginInit` + the TS* calls that are not per transaction. */
export interface Api {
  /** `TSConfigDirGet`. */
  readonly configDir: string;
  /** Where this plugin was named in plugin.config (what `verify` receives), for argument diagnostics. */
  readonly pluginLine: PluginVerifyContext;
  readonly records: Records;
  /** `TSHttpHookAdd`: a global hook. Only during `init`; later throws PXY_ERR_HOOK_AFTER_START. */
  httpHookAdd(id: HttpHookId, hook: Hook): void;
  /** `TSHttpHookAdd` for TLS hooks (VCONN_START, SSL_CLIENT_HELLO, VCONN_CLOSE). Only during `init`. */
  vconnHookAdd(id: VConnHookIdT, hook: VConnHook): void;
  /**
   * A hook written as an async function: resumes HttpContinue when it resolves, HttpError
   * when it rejects (logging the plugin and error).
   */
  asyncHook(fn: (txn: Txn, event: EventId) => Promise<void>): Hook;
  /**
   * `TSHttpConnectWithPluginId`: open a virtual connection into the host's own HTTP state
   * machine. Write an HTTP/1.1 request to it, read the response; for a CONNECT, tunnel bytes
   * follow a 2xx. The transaction is internal and sees every config and global hook.
   */
  httpConnect(opts: HttpConnectOptions): VConn;
  /**
   * The host's one tunnel primitive: relays a ⇄ b with back-pressure, half-close and timeouts.
   * The tunnel owns a and b from then on: read or write neither. When `a` is an intercepted CONNECT's
   * VConn, the host's own tunnel from the client, made once the response is sent, joins this one
   * (a chunk then crosses one relay); a and b then see only their close when the tunnel ends.
   */
  tunnel(a: VConn, b: VConn, opts?: TunnelOptions): Tunnel;
  /** `DbgCtl`: a debug function gated by tag. */
  dbgCtl(tag: string): DbgCtl;
  /** `TSError`: an ERROR line, prefixed with the plugin's name. */
  error(fmt: string, ...args: unknown[]): void;
  /** A NOTE line. */
  note(fmt: string, ...args: unknown[]): void;
}

/** Identity, as `TSPluginRegister`. */
export interface PluginInfo {
  readonly name: string;
  readonly vendor: string;
  readonly email: string;
}

/** A problem in a plugin's own arguments or files, reported as `FILE:LINE:COL: message`. */
export interface PluginDiagnostic {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
  readonly severity?: 'error' | 'warning';
}

/**
 * What a plugin module's default export is. `args[0]` is the plugin's name or path, as ATS's argv[0].
 * `verify` (optional) checks arguments without side effects, for `tsproxy --verify-config` and
 * reloads; `init` must reject arguments `verify` rejects (throwing a PluginArgsError).
 */
export interface Plugin {
  readonly info: PluginInfo;
  verify?(ctx: PluginVerifyContext, args: readonly string[]): PluginDiagnostic[];
  init(api: Api, args: readonly string[]): void | Promise<void>;
}

/** Where the plugin was named: for diagnostics about positional arguments. */
export interface PluginVerifyContext {
  readonly configDir: string;
  /** plugin.config path and the line the plugin was named on. */
  readonly file: string;
  readonly line: number;
  /** 1-based columns of `args[0]`, `args[1]`, ... on that line, when the host knows them. */
  readonly cols?: readonly number[];
}
