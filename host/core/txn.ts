/** A transaction (TSHttpTxn): one request, its hooks, and the response the client gets. */
import { ErrorCode, ProxyError } from '../api/errors.js';
import { HookId, TxnCntl } from '../api/events.js';
import type { HttpHookId, TxnCntlT } from '../api/events.js';
import type { Addr, Hook, Ssn, Txn, TxnArgMap, VConn } from '../api/types.js';
import { Hdr } from './http-hdr.js';
import { HookList, Resumer } from './hooks.js';
import type { Session } from './session.js';

let nextTxnId = 0;

export class Transaction implements Txn {
  readonly id = nextTxnId++;
  readonly session: Session;
  readonly clientReq: Hdr;
  serverResp: Hdr | null = null;
  clientResp: Hdr | null = null;
  readonly hooks = new HookList();
  readonly resumer: Resumer;
  /** The hook point running now (intercept is only valid at READ_REQUEST_HDR). */
  currentHook: HttpHookId | null = null;
  currentPlugin = '';
  interceptHandler: ((vc: VConn) => void) | null = null;
  interceptPlugin = '';
  skipRemap = false;
  /** Set by statusSet: the status of an error reply. */
  errorStatus: { status: number; reason: string | undefined } | null = null;
  #args = new Map<PropertyKey, unknown>();

  constructor(session: Session, clientReq: Hdr) {
    this.session = session;
    this.clientReq = clientReq;
    this.resumer = new Resumer(`transaction ${this.id}`);
  }

  get ssn(): Ssn {
    return this.session;
  }
  get isInternal(): boolean {
    return this.session.isInternal;
  }
  get pluginTag(): string | null {
    return this.session.pluginTag;
  }
  get pluginId(): number | null {
    return this.session.pluginId;
  }
  get clientAddr(): Addr {
    return this.session.clientAddr;
  }

  hookAdd(id: HttpHookId, hook: Hook): void {
    this.hooks.add(id, hook, this.currentPlugin);
  }

  reenable(ev: number): void {
    this.resumer.resume(ev);
  }

  intercept(onAccept: (vc: VConn) => void): void {
    if (this.currentHook !== HookId.HttpReadRequestHdr) {
      throw new ProxyError(ErrorCode.TXN_INTERCEPT_STATE, `transaction ${this.id}: intercept is only allowed from READ_REQUEST_HDR`);
    }
    if (this.interceptHandler) {
      throw new ProxyError(ErrorCode.TXN_INTERCEPT_STATE, `transaction ${this.id}: already intercepted by '${this.interceptPlugin}'`);
    }
    this.interceptHandler = onAccept;
    this.interceptPlugin = this.currentPlugin;
  }

  cntlSet(c: TxnCntlT, on: boolean): void {
    if (c === TxnCntl.SkipRemapping) this.skipRemap = on;
  }

  statusSet(status: number, reason?: string): void {
    this.errorStatus = { status, reason };
  }

  argSet<K extends keyof TxnArgMap>(key: K, value: TxnArgMap[K]): void {
    this.#args.set(key, value);
  }

  argGet<K extends keyof TxnArgMap>(key: K): TxnArgMap[K] | undefined {
    return this.#args.get(key) as TxnArgMap[K] | undefined;
  }
}

/** Hop-by-hop fields a proxy never forwards (RFC 9110 7.6.1). */
export const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];

