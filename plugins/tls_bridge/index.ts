/**
 * tls_bridge: bridge a client's CONNECT through a peer proxy over TLS (ATS's plugins/experimental/tls_bridge).
 *
 * plugin.config: `tls_bridge.so REGEX PEER ... [--file FILE] ...` (see README.md). A CONNECT whose
 * host matches a rule is intercepted; the plugin opens `CONNECT https://PEER` through this proxy
 * (TLS with proxy.config.ssl.client.*) and sends the client's CONNECT to the peer inside it.
 */
import { Event, HookId, PluginArgsError, TxnCntl } from '../../host/api/index.js';
import type { Api, Hook, Plugin, PluginDiagnostic, PluginVerifyContext, Txn } from '../../host/api/index.js';
import { Bridge, PLUGIN_NAME, PLUGIN_TAG, type BridgeEnv } from './bridge.js';
import { parseBridgeArgs, type BridgeConfig } from './config.js';
import { TlsBridgeErrorCode, bridgeMessage } from './errors.js';

export const NO_DESTINATIONS = 'No destinations defined, plugin disabled';

/** READ_REQUEST_HDR: intercept a non-internal CONNECT whose host matches a rule; always resume CONTINUE. */
export function readRequestHdrHook(env: BridgeEnv, config: BridgeConfig): Hook {
  return (txn: Txn) => {
    try {
      if (txn.isInternal || txn.clientReq.method !== 'CONNECT') return;
      const host = txn.clientReq.host;
      const rule = host === null ? null : config.match(host);
      if (rule === null) return;
      env.dbg("Intercepting transaction %d to '%s' via '%s'", txn.id, host, rule.peer);
      const bridge = new Bridge(env, txn, rule.peer);
      txn.hookAdd(HookId.HttpSendResponseHdr, bridge.txnHook);
      txn.hookAdd(HookId.HttpTxnClose, bridge.txnHook);
      txn.cntlSet(TxnCntl.SkipRemapping, true);
      txn.intercept(bridge.accept);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      env.api.error('[%s] %s', PLUGIN_NAME, bridgeMessage(TlsBridgeErrorCode.INTERNAL, txn.id, msg));
    } finally {
      txn.reenable(Event.HttpContinue);
    }
  };
}

function verify(ctx: PluginVerifyContext, args: readonly string[]): PluginDiagnostic[] {
  return parseBridgeArgs(ctx, args).diagnostics;
}

function init(api: Api, args: readonly string[]): void {
  const { config, diagnostics } = parseBridgeArgs(api.pluginLine, args);
  if (diagnostics.length > 0) throw new PluginArgsError(diagnostics);
  const dbg = api.dbgCtl(PLUGIN_TAG);
  if (config.rules.length === 0) {
    dbg(NO_DESTINATIONS);
    api.note('[%s] %s', PLUGIN_NAME, NO_DESTINATIONS);
  }
  let connectId = 0;
  const env: BridgeEnv = { api, dbg, nextConnectId: () => ++connectId };
  api.httpHookAdd(HookId.HttpReadRequestHdr, readRequestHdrHook(env, config));
}

const plugin: Plugin = {
  info: { name: 'tls_bridge', vendor: 'tsproxy', email: '' },
  verify,
  init,
};
export default plugin;
