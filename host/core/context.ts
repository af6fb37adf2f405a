/** What the state machine needs from the running host: one config generation and its built parts. */
import type { Duplex } from 'node:stream';
import type { HttpConnectOptions } from '../api/types.js';
import type { Config } from '../config/types.js';
import type { PrewarmPool } from '../net/prewarm.js';
import type { ClientTlsContext } from '../net/tls-context.js';
import type { GlobalHooks } from './hooks.js';
import type { Stats } from './stats.js';

export interface HostContext {
  readonly config: Config;
  readonly hooks: GlobalHooks;
  readonly clientTls: ClientTlsContext;
  /** Pre-warmed TLS connections for internal `CONNECT https://` (null: proxy.config.tunnel.prewarm off). */
  readonly prewarm: PrewarmPool | null;
  /** How long a hook may hold a transaction before PXY_ERR_HOOK_TIMEOUT. */
  readonly hookDeadlineMs: number;
  /** Addresses this host listens on (cycle detection). */
  readonly listening: readonly { address: string; port: number }[];
  readonly stats: Stats;
  /** TSHttpConnect: a virtual client connection into this host. */
  httpConnect(opts: HttpConnectOptions): Duplex;
}
