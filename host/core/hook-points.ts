/** Running one hook point for a transaction or a session: global, then session, then transaction hooks. */
import { Event, HOOK_NAMES, HookId } from '../api/events.js';
import type { HttpHookId } from '../api/events.js';
import type { Hook } from '../api/types.js';
import { diags } from '../diags.js';
import type { HostContext } from './context.js';
import { runChain } from './hooks.js';
import type { ChainResult } from './hooks.js';
import type { Session } from './session.js';
import type { Transaction } from './txn.js';

const dbg = diags.dbgCtl('plugin');
const OK: ChainResult = { ok: true };

/** Run the hooks of `id` for a transaction. Resolves at once when no hook is registered. */
export function txnHook(ctx: HostContext, txn: Transaction, id: HttpHookId): ChainResult | Promise<ChainResult> {
  const g = ctx.hooks.get(id);
  const s = txn.session.hooks.get(id);
  const t = txn.hooks.get(id);
  // Only a running hook can add a transaction hook, so with none registered there is nothing to run.
  if (!g && !s && !t) return OK;
  const name = HOOK_NAMES[id];
  const ev = id + Event.HttpReadRequestHdr;
  if (dbg.on) dbg('transaction %d: %s', txn.id, name);
  const r = runChain<Hook>(
    [() => g, () => s, () => txn.hooks.get(id)],
    (entry) => {
      txn.currentHook = id;
      txn.currentPlugin = entry.plugin;
      txn.session.currentPlugin = entry.plugin;
      return entry.fn(txn as never, ev as never);
    },
    txn.resumer,
    name,
    ctx.hookDeadlineMs,
  );
  return r.then((res) => {
    txn.currentHook = null;
    if (!res.ok && res.error) diags.error('[%s] %s (%s)', res.error.code, res.error.message, `transaction ${txn.id}`);
    return res;
  });
}

/** SSN_START / SSN_CLOSE: global then session hooks, resumed with `ssn.reenable`. */
export function ssnHook(ctx: HostContext, ssn: Session, id: typeof HookId.HttpSsnStart | typeof HookId.HttpSsnClose): ChainResult | Promise<ChainResult> {
  const g = ctx.hooks.get(id);
  const s = ssn.hooks.get(id);
  if (!g && !s) return OK;
  const name = HOOK_NAMES[id];
  const ev = id + Event.HttpReadRequestHdr;
  return runChain<Hook>(
    [() => g, () => s],
    (entry) => {
      ssn.currentPlugin = entry.plugin;
      return entry.fn(ssn as never, ev as never);
    },
    ssn.resumer,
    name,
    ctx.hookDeadlineMs,
  ).then((res) => {
    if (!res.ok && res.error) diags.error('[%s] %s (%s)', res.error.code, res.error.message, `session ${ssn.id}`);
    return res;
  });
}
