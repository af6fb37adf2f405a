/**
 * Outbound TLS session resumption (ATS's proxy.config.ssl.origin_session_cache): the newest
 * session ticket each origin sent, kept per origin name, address and port for one client context,
 * so the next connection skips the certificate exchange (on this machine a full mutual-TLS
 * handshake costs Node about 1.5 ms more CPU per side than a resumed one).
 *
 * A ticket is reused until a newer one arrives, as ATS does: servers need not send a new ticket
 * on a resumed connection (Node's do not), and the origin already knows this proxy by its client
 * certificate, so reuse links nothing it could not link anyway. A server that no longer accepts a
 * ticket (expired, keys rotated) simply runs a full handshake and sends a new one. The cache
 * belongs to one config generation's client context: a new certificate or CA never resumes a
 * session made under the old one.
 */
import { LRUCache } from 'lru-cache';

export class TlsSessionCache {
  readonly #origins: LRUCache<string, Buffer>;

  /** `origins`: how many origins to remember (least recently used first out). */
  constructor(origins: number) {
    this.#origins = new LRUCache({ max: origins });
  }

  /** The key of one origin: the name verified against its certificate, its address and port. */
  static key(servername: string, address: string, port: number): string {
    return `${servername}|${address}|${port}`;
  }

  /** The ticket to offer, or undefined. */
  get(key: string): Buffer | undefined {
    return this.#origins.get(key);
  }

  /** Keep the newest ticket an origin sent. */
  put(key: string, session: Buffer): void {
    this.#origins.set(key, session);
  }
}
