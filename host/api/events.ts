/**
 * Event and hook ids, with Apache Traffic Server's numbers (include/ts/apidefs.h).
 * A hook id is derived from its event, as ATS does, so the two tables cannot drift.
 */
export const Event = {
  None: 0,
  Immediate: 1,
  Timeout: 2,
  Error: 3,
  Continue: 4,
  VconnReadReady: 100,
  VconnWriteReady: 101,
  VconnReadComplete: 102,
  VconnWriteComplete: 103,
  VconnEos: 104,
  VconnInactivityTimeout: 105,
  VconnActiveTimeout: 106,
  VconnStart: 107,
  VconnClose: 108,
  NetAccept: 202,
  NetAcceptFailed: 204,
  HttpContinue: 60000,
  HttpError: 60001,
  HttpReadRequestHdr: 60002,
  HttpOsDns: 60003,
  HttpSendRequestHdr: 60004,
  HttpReadCacheHdr: 60005,
  HttpReadResponseHdr: 60006,
  HttpSendResponseHdr: 60007,
  HttpTxnStart: 60011,
  HttpTxnClose: 60012,
  HttpSsnStart: 60013,
  HttpSsnClose: 60014,
  HttpCacheLookupComplete: 60015,
  HttpPreRemap: 60016,
  HttpPostRemap: 60017,
  SslClientHello: 60207,
} as const;
export type EventId = (typeof Event)[keyof typeof Event];

/** HTTP hook ids: `TS_HTTP_X_HOOK = TS_EVENT_HTTP_X - TS_EVENT_HTTP_READ_REQUEST_HDR`. */
export const HookId = {
  HttpReadRequestHdr: Event.HttpReadRequestHdr - Event.HttpReadRequestHdr,
  HttpOsDns: Event.HttpOsDns - Event.HttpReadRequestHdr,
  HttpSendRequestHdr: Event.HttpSendRequestHdr - Event.HttpReadRequestHdr,
  HttpReadCacheHdr: Event.HttpReadCacheHdr - Event.HttpReadRequestHdr,
  HttpReadResponseHdr: Event.HttpReadResponseHdr - Event.HttpReadRequestHdr,
  HttpSendResponseHdr: Event.HttpSendResponseHdr - Event.HttpReadRequestHdr,
  HttpTxnStart: Event.HttpTxnStart - Event.HttpReadRequestHdr,
  HttpTxnClose: Event.HttpTxnClose - Event.HttpReadRequestHdr,
  HttpSsnStart: Event.HttpSsnStart - Event.HttpReadRequestHdr,
  HttpSsnClose: Event.HttpSsnClose - Event.HttpReadRequestHdr,
  HttpCacheLookupComplete: Event.HttpCacheLookupComplete - Event.HttpReadRequestHdr,
  HttpPreRemap: Event.HttpPreRemap - Event.HttpReadRequestHdr,
  HttpPostRemap: Event.HttpPostRemap - Event.HttpReadRequestHdr,
} as const;
export type HttpHookId = (typeof HookId)[keyof typeof HookId];

/** TLS/VConn hooks, in the order ATS runs them on an inbound `ssl` connection. */
export const VConnHookId = {
  VconnStart: 'VCONN_START',
  SslClientHello: 'SSL_CLIENT_HELLO',
  VconnClose: 'VCONN_CLOSE',
} as const;
export type VConnHookIdT = (typeof VConnHookId)[keyof typeof VConnHookId];

/** The event a hook delivers (`TS_X_HOOK` delivers `TS_EVENT_X`). */
export function hookEvent(id: HttpHookId): EventId {
  return (id + Event.HttpReadRequestHdr) as EventId;
}

/** ATS's upper-case names, for debug lines and error messages. */
export const HOOK_NAMES: Readonly<Record<HttpHookId, string>> = {
  [HookId.HttpReadRequestHdr]: 'READ_REQUEST_HDR',
  [HookId.HttpOsDns]: 'OS_DNS',
  [HookId.HttpSendRequestHdr]: 'SEND_REQUEST_HDR',
  [HookId.HttpReadCacheHdr]: 'READ_CACHE_HDR',
  [HookId.HttpReadResponseHdr]: 'READ_RESPONSE_HDR',
  [HookId.HttpSendResponseHdr]: 'SEND_RESPONSE_HDR',
  [HookId.HttpTxnStart]: 'TXN_START',
  [HookId.HttpTxnClose]: 'TXN_CLOSE',
  [HookId.HttpSsnStart]: 'SSN_START',
  [HookId.HttpSsnClose]: 'SSN_CLOSE',
  [HookId.HttpCacheLookupComplete]: 'CACHE_LOOKUP_COMPLETE',
  [HookId.HttpPreRemap]: 'PRE_REMAP',
  [HookId.HttpPostRemap]: 'POST_REMAP',
};

/** Transaction controls (`TSHttpTxnCntlSet`). */
export const TxnCntl = {
  SkipRemapping: 'SKIP_REMAPPING',
} as const;
export type TxnCntlT = (typeof TxnCntl)[keyof typeof TxnCntl];
