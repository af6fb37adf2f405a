/**
 * The running host: one config generation (records, tables, TLS contexts built once), its
 * plugins, its HTTP state machine and its listeners.
 */
import type { Duplex } from 'node:stream';
import type { HttpConnectOptions } from '../api/types.js';
import type { Config } from '../config/types.js';
import { diags } from '../diags.js';
import { initPlugins } from '../loader.js';
import type { LoadedPlugin } from '../loader.js';
import { PrewarmPool } from '../net/prewarm.js';
import { buildClientTlsContext, buildServerContexts } from '../net/tls-context.js';
import { createVConnPair } from '../net/vconn-pair.js';
import { makeApi } from './api-impl.js';
import type { HostContext } from './context.js';
import { GlobalHooks } from './hooks.js';
import { HttpStateMachine } from './http-sm.js';
import { Acceptor, kindOf, listen } from './listeners.js';
import type { Bound } from './listeners.js';
import { Stats } from './stats.js';
import { dialUpstream, isOk } from './upstream.js';

const dbg = diags.dbgCtl('http');

export interface HostOptions {
  /** How long a hook may hold a transaction (default 30 s). */
  readonly hookDeadlineMs?: number;
  /** TLS session-ticket keys shared by every worker (default: the TLS server's own random keys). */
  readonly ticketKeys?: Buffer;
}

export class Host {
  readonly ctx: HostContext;
  readonly sm: HttpStateMachine;
  readonly #acceptor: Acceptor;
  readonly #listening: { address: string; port: number }[] = [];
  #bound: Bound[] = [];
  #plugins: LoadedPlugin[] = [];

  /** Builds every TLS context now; throws ProxyError (PXY_ERR_CONFIG_INVALID) naming the file or record. */
  constructor(config: Config, opts: HostOptions = {}) {
    const rec = config.records;
    this.ctx = {
      config,
      hooks: new GlobalHooks(),
      clientTls: buildClientTlsContext(rec.ssl),
      prewarm:
        rec.prewarm === null
          ? null
          : new PrewarmPool(rec.prewarm, async (host, port) => {
              const up = await dialUpstream(this.ctx, { host, port, tls: true, method: 'CONNECT' });
              return isOk(up) ? up : null;
            }),
      hookDeadlineMs: opts.hookDeadlineMs ?? 30_000,
      listening: this.#listening,
      stats: new Stats(),
      httpConnect: (o) => this.#httpConnect(o),
    };
    const serverTls = rec.serverPorts.some((p) => p.ssl)
      ? buildServerContexts(config.sslMulticert, rec.ssl.clientCaForInbound, rec.ssl.certificationLevel)
      : null;
    this.sm = new HttpStateMachine(this.ctx);
    this.#acceptor = new Acceptor(this.ctx, this.sm, serverTls, opts.ticketKeys);
  }

  get plugins(): readonly LoadedPlugin[] {
    return this.#plugins;
  }

  /** Import and init every plugin.config line, in order; then global hooks are locked. */
  async loadPlugins(): Promise<void> {
    this.#plugins = await initPlugins(this.ctx.config, (name, where) => makeApi(name, this.ctx, where));
    this.ctx.hooks.lock();
  }

  /** Bind every server_ports descriptor. */
  async listen(): Promise<readonly Bound[]> {
    const rec = this.ctx.config.records;
    try {
      for (const d of rec.serverPorts) {
        const b = await listen(d, (s) => this.#acceptor.accept(kindOf(d), s), rec.connectionsThrottle);
        this.#bound.push(b);
        this.#listening.push({ address: b.address, port: b.port });
      }
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    return this.#bound;
  }

  /** Stop accepting; let sessions finish until `drainMs`, then close what is left. */
  async stop(drainMs = 5000): Promise<void> {
    const closed = Promise.all(this.#bound.map((b) => new Promise<void>((r) => b.server.close(() => r()))));
    this.#bound = [];
    this.ctx.prewarm?.close();
    this.sm.server.closeIdleConnections();
    const deadline = Date.now() + drainMs;
    while (this.sm.openSessions > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.#acceptor.destroyAll();
    this.sm.destroyAll();
    this.sm.server.close();
    await closed;
  }

  #httpConnect(o: HttpConnectOptions): Duplex {
    const [hostEnd, pluginEnd] = createVConnPair({ a: { remote: o.addr } });
    if (!this.ctx.config.ipAllow.acceptIn(o.addr.address).allow) {
      this.ctx.stats.inc('ip_allow.denied_accept');
      hostEnd.destroy();
      return pluginEnd;
    }
    if (dbg.on) dbg('internal connection from %s:%d (%s/%d)', o.addr.address, o.addr.port, o.tag ?? 'plugin', o.id ?? 0);
    this.sm.startSession({
      socket: hostEnd,
      clientAddr: o.addr,
      localPort: 0,
      isInternal: true,
      pluginTag: o.tag ?? 'plugin',
      pluginId: o.id ?? 0,
      blind: false,
    });
    return pluginEnd;
  }
}

