/**
 * health-check: answers `GET /_health` itself, through an Intercept (ats.md 2.4), so a load
 * balancer can probe the proxy without an origin or a remap rule.
 *
 * plugin.config: `dist/examples/plugins/health-check.js` (no arguments).
 */
import { Event, HookId, PluginArgsError, TxnCntl } from '../../host/api/index.js';
import type { Api, Plugin, PluginDiagnostic, PluginVerifyContext, Txn, VConn } from '../../host/api/index.js';

const HEALTH_PATH = '/_health';
const BODY = 'ok\n';
const RESPONSE = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`;

function verify(ctx: PluginVerifyContext, args: readonly string[]): PluginDiagnostic[] {
  return args.slice(1).map((a) => ({ file: ctx.file, line: ctx.line, col: 1, message: `health-check: unexpected argument '${a}' (it takes none)` }));
}

/** The path of an origin-form or absolute-form request target, without the query. */
function pathOf(url: string): string {
  return url.startsWith('/') ? url.split('?', 1)[0]! : URL.canParse(url) ? new URL(url).pathname : '';
}

/** The plugin is the origin: read the forwarded request header, write the whole response. */
function answer(vc: VConn): void {
  let head = '';
  vc.setEncoding('latin1');
  vc.on('error', () => vc.destroy());
  vc.on('data', (chunk: string) => {
    if (head.includes('\r\n\r\n')) return;
    head += chunk;
    if (head.includes('\r\n\r\n')) vc.end(RESPONSE, 'latin1');
  });
}

function init(api: Api, args: readonly string[]): void {
  const problems = verify({ configDir: api.configDir, file: 'plugin.config', line: 0 }, args);
  if (problems.length > 0) throw new PluginArgsError(problems);
  const dbg = api.dbgCtl('health_check');
  api.httpHookAdd(HookId.HttpReadRequestHdr, (txn: Txn) => {
    if (txn.clientReq.method === 'GET' && pathOf(txn.clientReq.url) === HEALTH_PATH) {
      if (dbg.on) dbg('transaction %d: answering %s', txn.id, HEALTH_PATH);
      txn.cntlSet(TxnCntl.SkipRemapping, true);
      txn.intercept(answer);
    }
    txn.reenable(Event.HttpContinue);
  });
}

const plugin: Plugin = { info: { name: 'health-check', vendor: 'tsproxy examples', email: 'dev@tsproxy.invalid' }, verify, init };
export default plugin;
