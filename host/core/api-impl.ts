/** The Api object each plugin's `init` receives: the host's calls, bound to that plugin's name. */
import { Event } from '../api/events.js';
import { join } from 'node:path';
import type { Api, Hook, HttpConnectOptions, PluginVerifyContext, TunnelOptions } from '../api/types.js';
import { diags } from '../diags.js';
import { createTunnel } from '../net/tunnel.js';
import type { HostContext } from './context.js';

/** `where`: the plugin.config line that named the plugin (a plugin made in-process has none). */
export function makeApi(plugin: string, ctx: HostContext, where?: PluginVerifyContext): Api {
  const idleMs = ctx.config.records.noActivityTimeoutIn * 1000;
  return {
    configDir: ctx.config.configDir,
    pluginLine: where ?? { configDir: ctx.config.configDir, file: join(ctx.config.configDir, 'plugin.config'), line: 0, cols: [] },
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
