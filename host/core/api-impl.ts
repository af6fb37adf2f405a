/** The Api object each plugin's `init` receives: the host's calls, bound to that plugin's name. */
import { Event } from '../api/events.js';
import type { Api, Hook, HttpConnectOptions, TunnelOptions } from '../api/types.js';
import { diags } from '../diags.js';
import { createTunnel } from '../net/tunnel.js';
import type { HostContext } from './context.js';

export function makeApi(plugin: string, ctx: HostContext): Api {
  const idleMs = ctx.config.records.noActivityTimeoutIn * 1000;
  return {
    configDir: ctx.config.configDir,
    records: { get: (name: string) => ctx.config.records.values.get(name) },
    httpHookAdd: (id, hook) => ctx.hooks.add(id, hook, plugin),
    vconnHookAdd: (id, hook) => ctx.hooks.addVConn(id, hook, plugin),
    asyncHook(fn): Hook {
      return (subject, event) => {
        fn(subject, event).then(
          () => subject.reenable(Event.HttpContinue),
          (err: unknown) => {
            diags.error('[%s] async hook failed: %s', plugin, (err as Error)?.message ?? String(err));
            subject.reenable(Event.HttpError);
          },
        );
      };
    },
    httpConnect: (o: HttpConnectOptions) => ctx.httpConnect(o),
    tunnel: (a, b, o?: TunnelOptions) => createTunnel(a, b, { idleTimeoutMs: idleMs, ...o }),
    dbgCtl: (tag: string) => diags.dbgCtl(tag),
    error: (fmt: string, ...args: unknown[]) => diags.error(fmt, ...args),
    note: (fmt: string, ...args: unknown[]) => diags.note(fmt, ...args),
  };
}
