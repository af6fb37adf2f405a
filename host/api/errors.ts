/**
 * Named error codes. Every error the host raises is a ProxyError with a stable `code`;
 * tests assert the code, at most one test per code pins the text.
 */
export class ProxyError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProxyError';
    this.code = code;
  }
}

export const ErrorCode = {
  // ---- Config ----
  CONFIG_INVALID: 'PXY_ERR_CONFIG_INVALID',
  CONFIG_FILE_UNREADABLE: 'PXY_ERR_CONFIG_FILE_UNREADABLE',
  // ---- Plugin ----
  PLUGIN_NOT_FOUND: 'PXY_ERR_PLUGIN_NOT_FOUND',
  PLUGIN_LOAD: 'PXY_ERR_PLUGIN_LOAD',
  PLUGIN_INIT: 'PXY_ERR_PLUGIN_INIT',
  PLUGIN_ARGS: 'PXY_ERR_PLUGIN_ARGS',
  // ---- Hook ----
  HOOK_AFTER_START: 'PXY_ERR_HOOK_AFTER_START',
  HOOK_ASYNC: 'PXY_ERR_HOOK_ASYNC',
  HOOK_THREW: 'PXY_ERR_HOOK_THREW',
  HOOK_TIMEOUT: 'PXY_ERR_HOOK_TIMEOUT',
  HOOK_BAD_ID: 'PXY_ERR_HOOK_BAD_ID',
  // ---- Txn ----
  TXN_REENABLE_TWICE: 'PXY_ERR_TXN_REENABLE_TWICE',
  TXN_INTERCEPT_STATE: 'PXY_ERR_TXN_INTERCEPT_STATE',
  TXN_CLOSED: 'PXY_ERR_TXN_CLOSED',
  // ---- Net ----
  NET_DNS: 'PXY_ERR_NET_DNS',
  NET_CONNECT: 'PXY_ERR_NET_CONNECT',
  NET_TIMEOUT: 'PXY_ERR_NET_TIMEOUT',
  NET_DENIED: 'PXY_ERR_NET_DENIED',
  // ---- Tls ----
  TLS_CERT: 'PXY_ERR_TLS_CERT',
  TLS_PROTOCOL: 'PXY_ERR_TLS_PROTOCOL',
  TLS_TUNNEL_STATE: 'PXY_ERR_TLS_TUNNEL_STATE',
} as const;
export type ErrorCodeT = (typeof ErrorCode)[keyof typeof ErrorCode];
