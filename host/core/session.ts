/** A client session (TSHttpSsn): one inbound connection, real or virtual. */
import type { Duplex } from 'node:stream';
import type { HttpHookId } from '../api/events.js';
import type { Addr, Hook, Ssn } from '../api/types.js';
import { HookList, Resumer } from './hooks.js';

let nextSsnId = 1;

export interface SessionInit {
  readonly socket: Duplex;
  readonly clientAddr: Addr;
  readonly localPort: number;
  readonly isInternal: boolean;
  readonly pluginTag: string | null;
  readonly pluginId: number | null;
  /** Port kind: CONNECT only on a `blind` port. */
  readonly blind: boolean;
}

export class Session implements Ssn {
  readonly id = nextSsnId++;
  readonly socket: Duplex;
  readonly clientAddr: Addr;
  readonly localPort: number;
  readonly isInternal: boolean;
  readonly pluginTag: string | null;
  readonly pluginId: number | null;
  readonly blind: boolean;
  readonly hooks = new HookList();
  readonly resumer = new Resumer(`session ${this.id}`);
  /** The plugin adding hooks right now (set by the runner around each call). */
  currentPlugin = '';

  constructor(init: SessionInit) {
    this.socket = init.socket;
    this.clientAddr = init.clientAddr;
    this.localPort = init.localPort;
    this.isInternal = init.isInternal;
    this.pluginTag = init.pluginTag;
    this.pluginId = init.pluginId;
    this.blind = init.blind;
  }

  hookAdd(id: HttpHookId, hook: Hook): void {
    this.hooks.add(id, hook, this.currentPlugin);
  }

  reenable(ev: number): void {
    this.resumer.resume(ev);
  }
}
