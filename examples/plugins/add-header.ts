/**
 * add-header: adds `X-Tsproxy-Example: 1` (or `NAME: VALUE` from its arguments) to every response
 * the client gets, at SEND_RESPONSE_HDR, so it also marks the proxy's own error replies.
 *
 * plugin.config: `dist/examples/plugins/add-header.js [NAME VALUE]`.
 */
import { Event, HookId, PluginArgsError } from '../../host/api/index.js';
import type { Api, Plugin, PluginDiagnostic, PluginVerifyContext, Txn } from '../../host/api/index.js';

const DEFAULT_NAME = 'X-Tsproxy-Example';
const DEFAULT_VALUE = '1';
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function verify(ctx: PluginVerifyContext, args: readonly string[]): PluginDiagnostic[] {
  const problem = (message: string): PluginDiagnostic[] => [{ file: ctx.file, line: ctx.line, col: 1, message: `add-header: ${message}` }];
  if (args.length !== 1 && args.length !== 3) return problem(`expected no arguments or NAME VALUE, got ${args.length - 1}`);
  if (args.length === 3 && !TOKEN.test(args[1]!)) return problem(`'${args[1]}' is not a header field name`);
  if (args.length === 3 && /[\r\n\0]/.test(args[2]!)) return problem('the value must not contain CR, LF or NUL');
  return [];
}

function init(api: Api, args: readonly string[]): void {
  const problems = verify({ configDir: api.configDir, file: 'plugin.config', line: 0 }, args);
  if (problems.length > 0) throw new PluginArgsError(problems);
  const name = args[1] ?? DEFAULT_NAME;
  const value = args[2] ?? DEFAULT_VALUE;
  const dbg = api.dbgCtl('add_header');
  api.httpHookAdd(HookId.HttpSendResponseHdr, (txn: Txn) => {
    txn.clientResp?.set(name, value);
    if (dbg.on) dbg('transaction %d: %s: %s', txn.id, name, value);
    txn.reenable(Event.HttpContinue);
  });
}

const plugin: Plugin = { info: { name: 'add-header', vendor: 'tsproxy examples', email: 'dev@tsproxy.invalid' }, verify, init };
export default plugin;
