/**
 * One hook registry and ONE runner. Order for a hook id: global (plugin.config order), then
 * session, then transaction; insertion order within a scope. Every hook resumes exactly once.
 */
import { ErrorCode, ProxyError } from '../api/errors.js';
import { Event, HOOK_NAMES, HookId, VConnHookId } from '../api/events.js';
import type { HttpHookId, VConnHookIdT } from '../api/events.js';
import type { Hook, VConnHook } from '../api/types.js';

export interface Entry<F> {
  readonly fn: F;
  /** The plugin that added it (for error messages). */
  readonly plugin: string;
}

const HTTP_IDS = new Set<number>(Object.values(HookId));
const VCONN_IDS = new Set<string>(Object.values(VConnHookId));

function checkHttpHookId(id: number): asserts id is HttpHookId {
  if (!HTTP_IDS.has(id)) throw new ProxyError(ErrorCode.HOOK_BAD_ID, `unknown HTTP hook id ${id}`);
}

/** Hooks of one scope (global, one session, or one transaction). */
export class HookList {
  #http = new Map<HttpHookId, Entry<Hook>[]>();

  add(id: HttpHookId, fn: Hook, plugin: string): void {
    checkHttpHookId(id);
    if (typeof fn !== 'function') throw new ProxyError(ErrorCode.HOOK_BAD_ID, `hook for ${HOOK_NAMES[id]} is not a function`);
    let l = this.#http.get(id);
    if (!l) this.#http.set(id, (l = []));
    l.push({ fn, plugin });
  }

  get(id: HttpHookId): readonly Entry<Hook>[] | undefined {
    return this.#http.get(id);
  }
}

/** The global registry: HTTP and TLS hooks, locked once every plugin's init has run. */
export class GlobalHooks extends HookList {
  #vconn = new Map<VConnHookIdT, Entry<VConnHook>[]>();
  #locked = false;

  override add(id: HttpHookId, fn: Hook, plugin: string): void {
    this.#checkOpen('httpHookAdd');
    super.add(id, fn, plugin);
  }

  addVConn(id: VConnHookIdT, fn: VConnHook, plugin: string): void {
    this.#checkOpen('vconnHookAdd');
    if (!VCONN_IDS.has(id)) throw new ProxyError(ErrorCode.HOOK_BAD_ID, `unknown TLS hook id '${String(id)}'`);
    let l = this.#vconn.get(id);
    if (!l) this.#vconn.set(id, (l = []));
    l.push({ fn, plugin });
  }

  vconn(id: VConnHookIdT): readonly Entry<VConnHook>[] {
    return this.#vconn.get(id) ?? [];
  }

  lock(): void {
    this.#locked = true;
  }

  #checkOpen(what: string): void {
    if (this.#locked) throw new ProxyError(ErrorCode.HOOK_AFTER_START, `${what} after start: global hooks may only be added during init`);
  }
}

export type ResumeEvent = typeof Event.HttpContinue | typeof Event.HttpError;

/**
 * The "reenable" side of a hook call. `expect` opens a slot; `resume` fills it exactly once.
 * A resume with no open slot (a second reenable) throws PXY_ERR_TXN_REENABLE_TWICE.
 */
export class Resumer {
  #slot: ((ev: ResumeEvent) => void) | null = null;
  #what: string;

  constructor(what: string) {
    this.#what = what;
  }

  expect(): Promise<ResumeEvent> {
    return new Promise((resolve) => {
      this.#slot = resolve;
    });
  }

  cancel(): void {
    this.#slot = null;
  }

  resume(ev: number): void {
    const slot = this.#slot;
    if (!slot) throw new ProxyError(ErrorCode.TXN_REENABLE_TWICE, `${this.#what}: reenable called twice, or outside a hook`);
    if (ev !== Event.HttpContinue && ev !== Event.HttpError) {
      throw new ProxyError(ErrorCode.HOOK_BAD_ID, `${this.#what}: reenable takes Event.HttpContinue or Event.HttpError, not ${ev}`);
    }
    this.#slot = null;
    slot(ev);
  }
}

/** Result of running one hook point: continue, or stop with the plugin's error (or a misuse error). */
export type ChainResult = { ok: true } | { ok: false; error: ProxyError | null };

const OK: ChainResult = { ok: true };

/**
 * Run every entry of `lists` in order; `invoke` calls one hook. Each must resume via `resumer`
 * before `deadlineMs`. Returns at the first HttpError, throw, thenable or timeout.
 */
export async function runChain<F>(
  lists: readonly (() => readonly Entry<F>[] | undefined)[],
  invoke: (entry: Entry<F>) => unknown,
  resumer: Resumer,
  name: string,
  deadlineMs: number,
  stop?: () => boolean,
): Promise<ChainResult> {
  for (const listOf of lists) {
    // Looked up when the chain reaches it: a transaction hook added by an earlier hook still runs.
    const list = listOf();
    if (!list) continue;
    // Live length: a transaction hook added from inside a hook of the same id still runs.
    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!;
      const waiting = resumer.expect();
      let ret: unknown;
      try {
        ret = invoke(entry);
      } catch (err) {
        resumer.cancel();
        return fail(ErrorCode.HOOK_THREW, `plugin '${entry.plugin}' threw in ${name}: ${(err as Error)?.message ?? String(err)}`, err);
      }
      if (ret !== null && typeof ret === 'object' && typeof (ret as { then?: unknown }).then === 'function') {
        resumer.cancel();
        (ret as Promise<unknown>).then(undefined, () => undefined);
        return fail(ErrorCode.HOOK_ASYNC, `plugin '${entry.plugin}' returned a promise from ${name}; use api.asyncHook() for async hooks`);
      }
      const ev = await withDeadline(waiting, deadlineMs);
      if (ev === null) {
        resumer.cancel();
        return fail(ErrorCode.HOOK_TIMEOUT, `plugin '${entry.plugin}' did not reenable ${name} within ${deadlineMs} ms`);
      }
      if (ev === Event.HttpError) return { ok: false, error: null };
      if (stop?.()) return OK;
    }
  }
  return OK;
}

function fail(code: string, message: string, cause?: unknown): ChainResult {
  return { ok: false, error: new ProxyError(code, message, cause === undefined ? undefined : { cause }) };
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<null>((resolve) => {
    timer = setTimeout(resolve, ms, null);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
