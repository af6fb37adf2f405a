/**
 * The public door: the only module plugins import. Everything else under host/ is private.
 */
export { Event, HookId, VConnHookId, TxnCntl, HOOK_NAMES, hookEvent } from './events.js';
export type { EventId, HttpHookId, VConnHookIdT, TxnCntlT } from './events.js';
export { ProxyError, ErrorCode } from './errors.js';
export type { ErrorCodeT } from './errors.js';
export { PluginArgsError } from './plugin-args-error.js';
export { withYaml } from './yaml.js';
export type { Yaml } from './yaml.js';
export type * from './types.js';
