/**
 * The shapes every config parser produces and the host consumes. One load of a config
 * directory yields one immutable Config (a "generation"); a reload builds a new one beside it.
 */

/** A problem found in a config file, printed as `FILE:LINE:COL: message` (1-based line and column). */
export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

/** What every parser returns: its value (best effort, even with errors) and every problem found. */
export interface Parsed<T> {
  readonly value: T;
  readonly diagnostics: Diagnostic[];
}

// ---------------------------------------------------------------- records

/** One `proxy.config.http.server_ports` descriptor, per address family. */
export interface PortDescriptor {
  readonly port: number;
  readonly family: 4 | 6;
  readonly ssl: boolean;
  /** CONNECT only (ATS `blind`). */
  readonly blind: boolean;
  /** `ip-in=ADDR`: the local address to bind; null = any address of the family. */
  readonly ipIn: string | null;
  /** The descriptor as written, for messages. */
  readonly text: string;
}

/** `proxy.config.http.connect_ports`: `*`, ports and `a-b` ranges. */
export interface ConnectPorts {
  readonly any: boolean;
  readonly ranges: readonly (readonly [number, number])[];
}

export type VerifyServerPolicy = 'DISABLED' | 'PERMISSIVE' | 'ENFORCED';
export type VerifyServerProperties = 'ALL' | 'SIGNATURE' | 'NAME' | 'NONE';

/** The records tsproxy honours, typed. Paths are absolute (relative ones resolved against the config dir). */
export interface RecordsConfig {
  /** Every known record by its ATS name, defaults applied (for `api.records.get`). */
  readonly values: ReadonlyMap<string, string | number>;
  readonly serverPorts: readonly PortDescriptor[];
  readonly connectPorts: ConnectPorts;
  readonly remapRequired: boolean;
  /** proxy.config.hostdb.host_file.path, or null. */
  readonly hostFilePath: string | null;
  /** 0 off, 1 on, 2 on for client_ip only (treated as on). */
  readonly debugEnabled: 0 | 1 | 2;
  readonly debugTags: string;
  readonly ssl: {
    /** Directory holding server certificates (ssl_multicert ssl_cert_name is relative to it). */
    readonly serverCertDir: string;
    readonly serverKeyDir: string;
    /** CA for inbound client certificates: a file or a directory of PEM files, or null. */
    readonly clientCaForInbound: string | null;
    readonly certificationLevel: 0 | 1 | 2;
    readonly verifyServerPolicy: VerifyServerPolicy;
    readonly verifyServerProperties: VerifyServerProperties;
    /** CA for outbound server verification: a file or a directory, or null (system roots). */
    readonly clientCa: string | null;
    /** Outbound client certificate and key files, or null. */
    readonly clientCert: string | null;
    readonly clientKey: string | null;
    /** proxy.config.ssl.origin_session_cache.size, or 0 when the cache is off. */
    readonly originSessionCacheSize: number;
  };
  /** Pre-warmed TLS connections for plugins' internal `CONNECT https://` (null: off). */
  readonly prewarm: { readonly min: number; readonly inactiveTimeoutMs: number } | null;
  /** Seconds. */
  readonly handshakeTimeoutIn: number;
  readonly connectAttemptsTimeout: number;
  readonly noActivityTimeoutIn: number;
  readonly noActivityTimeoutOut: number;
  /** proxy.config.net.connections_throttle (0: no limit). */
  readonly connectionsThrottle: number;
  /** Bytes. */
  readonly requestHeaderMaxSize: number;
  /** Absolute directory for relative plugin paths. */
  readonly pluginDir: string;
  /** proxy.config.exec_thread.*: one worker per CPU, or `limit` workers. */
  readonly execThread: { readonly autoconfig: boolean; readonly limit: number };
}

// ---------------------------------------------------------------- plugin.config

export interface PluginLine {
  readonly file: string;
  readonly line: number;
  /** The first token as written (`tls_bridge.so`, `./x.js`). */
  readonly name: string;
  /** Arguments after the name, `$record` expanded, quotes removed. */
  readonly args: readonly string[];
  /** 1-based columns of the name and of each argument (`[nameCol, ...argCols]`). */
  readonly cols: readonly number[];
}

// ---------------------------------------------------------------- remap.config

export type RemapKind =
  | 'map'
  | 'reverse_map'
  | 'regex_map'
  | 'redirect'
  | 'redirect_temporary'
  | 'map_with_recv_port'
  | 'regex_map_with_recv_port';

export interface RemapRule {
  readonly kind: RemapKind;
  readonly from: string;
  readonly to: string;
  readonly file: string;
  readonly line: number;
}

/** What remap decided for a request. */
export type RemapResult =
  | { readonly kind: 'map'; readonly target: URL; readonly rule: RemapRule }
  | { readonly kind: 'redirect'; readonly status: 301 | 307; readonly location: string; readonly rule: RemapRule };

export interface RemapRequest {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly recvPort: number;
  readonly method: string;
}

export interface RemapTable {
  readonly rules: readonly RemapRule[];
  /** ATS precedence: *_with_recv_port, then map/regex_map/reverse_map, then redirect*; null if none. */
  lookup(req: RemapRequest): RemapResult | null;
}

// ---------------------------------------------------------------- ip_allow.yaml

export interface IpAllowDecision {
  readonly allow: boolean;
  /** The rule that decided (`file:line`), or 'default'. */
  readonly by: string;
}

export interface IpAllow {
  /** Whether the file was present (else the built-in defaults apply). */
  readonly fromFile: boolean;
  /** `in` rules at accept: false if the matching rule denies every method (close at accept). */
  acceptIn(ip: string): IpAllowDecision;
  /** `in` rules per method. */
  checkIn(ip: string, method: string): IpAllowDecision;
  /** `out` rules after DNS, before connecting. */
  checkOut(ip: string, method: string): IpAllowDecision;
}

// ---------------------------------------------------------------- ssl_multicert.config

export interface SslCertEntry {
  /** `*` or an address. */
  readonly destIp: string;
  /** Absolute paths. */
  readonly certFile: string;
  readonly keyFile: string;
  readonly file: string;
  readonly line: number;
}

// ---------------------------------------------------------------- hosts file

export interface HostsTable {
  /** Addresses for a name (case-insensitive), in file order; empty if unknown. */
  lookup(name: string): readonly string[];
}

// ---------------------------------------------------------------- the whole directory

export interface Config {
  readonly configDir: string;
  readonly records: RecordsConfig;
  readonly plugins: readonly PluginLine[];
  readonly remap: RemapTable;
  readonly ipAllow: IpAllow;
  readonly sslMulticert: readonly SslCertEntry[];
  readonly hosts: HostsTable;
}
