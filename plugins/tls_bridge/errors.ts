/**
 * tls_bridge's own error table: `TLS_BRIDGE_ERR_*` codes with printf-style messages.
 * The argument messages keep the texts of ATS's tls_bridge.cc where it has one.
 */
import { format } from 'node:util';
import { ProxyError } from '../../host/api/index.js';

export const TlsBridgeErrorCode = {
  // ---- Arguments and --file lines ----
  NO_FILE_NAME: 'TLS_BRIDGE_ERR_NO_FILE_NAME',
  FILE_UNREADABLE: 'TLS_BRIDGE_ERR_FILE_UNREADABLE',
  UNKNOWN_OPTION: 'TLS_BRIDGE_ERR_UNKNOWN_OPTION',
  NO_PEER: 'TLS_BRIDGE_ERR_NO_PEER',
  BAD_REGEX: 'TLS_BRIDGE_ERR_BAD_REGEX',
  BAD_PEER: 'TLS_BRIDGE_ERR_BAD_PEER',
  TRAILING_TEXT: 'TLS_BRIDGE_ERR_TRAILING_TEXT',
  // ---- The host's reply to the internal CONNECT ----
  REPLY_MALFORMED: 'TLS_BRIDGE_ERR_REPLY_MALFORMED',
  REPLY_TOO_LARGE: 'TLS_BRIDGE_ERR_REPLY_TOO_LARGE',
  OUTBOUND_CLOSED: 'TLS_BRIDGE_ERR_OUTBOUND_CLOSED',
  // ---- Anything a hook or callback threw ----
  INTERNAL: 'TLS_BRIDGE_ERR_INTERNAL',
} as const;
export type TlsBridgeErrorCodeT = (typeof TlsBridgeErrorCode)[keyof typeof TlsBridgeErrorCode];

const MESSAGES: Readonly<Record<TlsBridgeErrorCodeT, string>> = {
  [TlsBridgeErrorCode.NO_FILE_NAME]: "Invalid '--file' argument - no file name found.",
  [TlsBridgeErrorCode.FILE_UNREADABLE]: "Invalid '--file' argument - unable to read file '%s' : %s.",
  [TlsBridgeErrorCode.UNKNOWN_OPTION]: "Unrecognized option '%s'%s",
  [TlsBridgeErrorCode.NO_PEER]: "Regular expression '%s' without destination service",
  [TlsBridgeErrorCode.BAD_REGEX]: "Failed to compile regular expression '%s': %s",
  [TlsBridgeErrorCode.BAD_PEER]: "Invalid destination service '%s' for '%s' - expected host[:port]",
  [TlsBridgeErrorCode.TRAILING_TEXT]: "Unexpected '%s' after destination service '%s' (a comment starts with ' #')",
  [TlsBridgeErrorCode.REPLY_MALFORMED]: 'Malformed status line in the reply to CONNECT https://%s (transaction %d)',
  [TlsBridgeErrorCode.REPLY_TOO_LARGE]: 'Reply header to CONNECT https://%s longer than %d bytes (transaction %d)',
  [TlsBridgeErrorCode.OUTBOUND_CLOSED]: 'Outbound connection to %s closed before the tunnel was ready (transaction %d)',
  [TlsBridgeErrorCode.INTERNAL]: 'Transaction %d: %s',
};

/** The message for `code`, with printf-style arguments filled in. */
export function bridgeMessage(code: TlsBridgeErrorCodeT, ...args: unknown[]): string {
  return format(MESSAGES[code], ...args);
}

/** A ProxyError with one of tls_bridge's codes. */
export function bridgeError(code: TlsBridgeErrorCodeT, args: readonly unknown[], cause?: unknown): ProxyError {
  return new ProxyError(code, bridgeMessage(code, ...args), cause === undefined ? undefined : { cause });
}
