/** Command-line flags of `npm run bench -- ...`. */
import { parseArgs } from 'node:util';

const SCENARIO_IDS = ['bridge-bulk', 'bridge-setup', 'connect', 'sni', 'idle'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export interface BenchOptions {
  readonly scenarios: readonly ScenarioId[];
  readonly runs: number;
  /** Bytes per bulk transfer (bridge bulk, CONNECT bulk, SNI bulk). */
  readonly bytes: number;
  /** Sequential connections/handshakes per run. */
  readonly n: number;
  /** Concurrent client loops, and how long they run (s). */
  readonly conc: number;
  readonly secs: number;
  /** Idle tunnels held per run. */
  readonly tunnels: number;
  readonly quick: boolean;
  readonly installPeers: boolean;
  readonly atsTlsBridge: string | null;
  readonly tsproxyMain: string;
  readonly nodeBaseline: boolean;
  readonly outDir: string;
  readonly help: boolean;
}

export const USAGE = `npm run bench -- [flags]
  --scenario a,b      ${SCENARIO_IDS.join(', ')} (or 1-5); default all
  --runs N            rounds per scenario, round-robin over tsproxy and peers (default 3)
  --bytes SIZE        bytes per bulk transfer: 1GiB, 256MiB, 5e8 ... (default 1GiB)
  --n N               sequential connections or handshakes per run (default 1000)
  --conc N            concurrent client loops (default 50)
  --secs S            duration of each concurrent run (default 3)
  --tunnels N         idle tunnels per memory run (default 1000)
  --quick             smoke run: 32MiB, n 100, conc 10, 1 s, 100 tunnels (flags given still win)
  --install-peers     apt-get install -y the peers first (stunnel4 haproxy squid tinyproxy nginx-light
                      libnginx-mod-stream trafficserver)
  --ats-tls-bridge P  path of a built tls_bridge.so for the ATS bridge peer
                      (or env TSPROXY_BENCH_ATS_TLS_BRIDGE)
  --tsproxy-main P    tsproxy's host CLI (default: host/main.js in the same build as this bench)
  --node-baseline     also run minimal Node relays (bench/baseline) as a reference peer
  --out DIR           results directory (default bench/results in the repo)`;

const QUICK = { bytes: 32 * 1024 * 1024, n: 100, conc: 10, secs: 1, tunnels: 100 };
const FULL = { bytes: 1024 * 1024 * 1024, n: 1000, conc: 50, secs: 3, tunnels: 1000 };

const UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

/** `1GiB`, `256MiB`, `10MB`, `5e8`, `1048576` -> bytes. */
function parseSize(text: string): number {
  const m = /^\s*([\d.]+(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const v = Number(m?.[1]);
  if (m === null || unit === undefined || !Number.isFinite(v) || v <= 0) throw new Error(`bad size: ${text}`);
  return Math.round(v * unit);
}

function positive(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number (got ${text})`);
  return v;
}

function scenarios(text: string | undefined): ScenarioId[] {
  if (text === undefined || text === '' || text === 'all') return [...SCENARIO_IDS];
  return text.split(',').map((s) => {
    const t = s.trim();
    const byNumber = /^\d$/.test(t) ? SCENARIO_IDS[Number(t) - 1] : undefined;
    const id = byNumber ?? SCENARIO_IDS.find((x) => x === t);
    if (id === undefined) throw new Error(`unknown scenario ${t}: use ${SCENARIO_IDS.join(', ')} or 1-5`);
    return id;
  });
}

/** Parse argv (without node and the script). */
export function parseOptions(argv: readonly string[], defaults: { tsproxyMain: string; outDir: string }): BenchOptions {
  const { values: v } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      scenario: { type: 'string' },
      runs: { type: 'string' },
      bytes: { type: 'string' },
      n: { type: 'string' },
      conc: { type: 'string' },
      secs: { type: 'string' },
      tunnels: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'install-peers': { type: 'boolean', default: false },
      'ats-tls-bridge': { type: 'string' },
      'tsproxy-main': { type: 'string' },
      'node-baseline': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const base = v.quick === true ? QUICK : FULL;
  return {
    scenarios: scenarios(v.scenario),
    runs: Math.round(positive(v.runs, 'runs', 3)),
    bytes: v.bytes === undefined ? base.bytes : parseSize(v.bytes),
    n: Math.round(positive(v.n, 'n', base.n)),
    conc: Math.round(positive(v.conc, 'conc', base.conc)),
    secs: positive(v.secs, 'secs', base.secs),
    tunnels: Math.round(positive(v.tunnels, 'tunnels', base.tunnels)),
    quick: v.quick === true,
    installPeers: v['install-peers'] === true,
    atsTlsBridge: v['ats-tls-bridge'] ?? null,
    tsproxyMain: v['tsproxy-main'] ?? defaults.tsproxyMain,
    nodeBaseline: v['node-baseline'] === true,
    outDir: v.out ?? defaults.outDir,
    help: v.help === true,
  };
}
