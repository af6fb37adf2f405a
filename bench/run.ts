/**
 * `npm run bench`: tsproxy against real peers, round-robin, on loopback. Progress on stderr, the
 * table and the targets block on stdout, latest.json and latest.svg in bench/results/.
 * Every process started is killed at the end, on error and on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, USAGE, type BenchOptions, type ScenarioId } from './args.js';
import type { BenchContext } from './context.js';
import { makePki } from './pki.js';
import { ProcRegistry } from './procs.js';
import { computeRatios } from './report/ratios.js';
import { ratioChart } from './report/svg.js';
import { formatScenario } from './report/table.js';
import { formatTargets, judgeTargets } from './report/targets.js';
import type { ScenarioResult } from './results.js';
import { runBridgeBulk } from './scenarios/bridge-bulk.js';
import { runBridgeSetup } from './scenarios/bridge-setup.js';
import { runConnect } from './scenarios/connect.js';
import { runIdle } from './scenarios/idle.js';
import { runSni } from './scenarios/sni.js';
import { ATS_MODULES, findTlsBridge } from './subjects/ats.js';

const PEER_PACKAGES = ['stunnel4', 'haproxy', 'squid', 'tinyproxy', 'nginx-light', 'libnginx-mod-stream', 'trafficserver'];

const RUNNERS: Readonly<Record<ScenarioId, (ctx: BenchContext) => Promise<ScenarioResult>>> = {
  'bridge-bulk': runBridgeBulk,
  'bridge-setup': runBridgeSetup,
  connect: runConnect,
  sni: runSni,
  idle: runIdle,
};

const here = dirname(fileURLToPath(import.meta.url));

function repoRoot(): string {
  for (let d = here; ; d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tsproxy') return d;
    if (dirname(d) === d) throw new Error(`no tsproxy package.json above ${here}`);
  }
}

function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function apt(args: readonly string[]): boolean {
  progress(`apt-get ${args.join(' ')}`);
  // apt's output goes to stderr: stdout is for the table.
  const r = spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

function installPeers(): void {
  const install = ['install', '-y', ...PEER_PACKAGES];
  // A machine whose package lists were never fetched needs one `apt-get update` first.
  if (apt(install) || (apt(['update']) && apt(install))) return;
  progress('apt-get install failed; missing peers will be skipped');
}

function peerVersions(): Record<string, string> {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package}\t${Version}\n', ...PEER_PACKAGES], { encoding: 'utf8' });
  return Object.fromEntries(
    (r.stdout ?? '')
      .split('\n')
      .filter((l) => l.includes('\t') && !l.endsWith('\t'))
      .map((l) => l.split('\t') as [string, string]),
  );
}

function tlsBridgeFinding(opts: BenchOptions): string {
  try {
    return `using ${findTlsBridge(opts.atsTlsBridge)}`;
  } catch (err) {
    const mods = existsSync(ATS_MODULES) ? readdirSync(ATS_MODULES).filter((f) => f.endsWith('.so')) : [];
    return `${err instanceof Error ? err.message : String(err)} [${ATS_MODULES}: ${mods.length} modules: ${mods.join(' ')}]`;
  }
}

async function main(): Promise<void> {
  const root = repoRoot();
  const opts = parseOptions(process.argv.slice(2), {
    tsproxyMain: join(resolve(here, '..'), 'host', 'main.js'),
    outDir: join(root, 'bench', 'results'),
  });
  if (opts.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (opts.installPeers) installPeers();
  const tmp = await mkdtemp(join(tmpdir(), 'tsproxy-bench-'));
  // Peers that drop privileges (squid, tinyproxy, nginx workers) must reach their files.
  await chmod(tmp, 0o755);
  await mkdir(join(tmp, 'logs'));
  const reg = new ProcRegistry(join(tmp, 'logs'));
  process.once('exit', () => reg.killAllSync());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      progress(`${sig}: stopping every process started`);
      void reg.killAll().finally(() => {
        rmSync(tmp, { recursive: true, force: true });
        process.exit(130);
      });
    });
  }
  try {
    await mkdir(join(tmp, 'pki'));
    const ctx: BenchContext = {
      opts,
      reg,
      pki: await makePki(join(tmp, 'pki')),
      tmp,
      clientsDir: join(here, 'clients'),
      baselineDir: join(here, 'baseline'),
      progress,
    };
    const tlsBridge = tlsBridgeFinding(opts);
    progress(`tsproxy: ${opts.tsproxyMain}${existsSync(opts.tsproxyMain) ? '' : ' (missing: its runs will be skipped)'}`);
    progress(`ATS tls_bridge: ${tlsBridge}`);
    progress(
      `scenarios ${opts.scenarios.join(',')}; runs ${opts.runs}; bytes ${opts.bytes}; n ${opts.n}; conc ${opts.conc}; ` +
        `secs ${opts.secs}; tunnels ${opts.tunnels}`,
    );
    const started = Date.now();
    const results: ScenarioResult[] = [];
    for (const id of opts.scenarios) {
      progress(`scenario ${id}`);
      try {
        results.push(await RUNNERS[id](ctx));
      } catch (err) {
        progress(`scenario ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const ratios = computeRatios(results);
    const targets = judgeTargets(results);
    for (const sc of results) process.stdout.write(formatScenario(sc));
    process.stdout.write('\n' + formatTargets(targets));
    if (opts.quick) process.stdout.write('  (quick run: tiny sizes and 10 ms CPU ticks make these ratios a smoke test only)\n');
    const tsSkips = results.flatMap((r) => r.subjects.filter((s) => s.tsproxy && s.skipped !== null).map((s) => s.skipped ?? ''));
    const title = `tsproxy bench ${new Date().toISOString().slice(0, 16)}Z${opts.quick ? ' (quick)' : ''}`;
    const emptyReason = `no ratios: ${tsSkips[0]?.split('\n')[0] ?? 'tsproxy or its peers did not run'}`;
    await mkdir(opts.outDir, { recursive: true });
    const json = {
      meta: {
        date: new Date().toISOString(),
        durationSecs: Math.round((Date.now() - started) / 1000),
        node: process.version,
        cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
        memGiB: Math.round(totalmem() / 2 ** 30),
        peers: peerVersions(),
        atsTlsBridge: tlsBridge,
        tsproxyMain: opts.tsproxyMain,
        units: { GB: 1e9, MB: 1e6, KB: 1024 },
      },
      options: opts,
      scenarios: results,
      ratios,
      targets,
    };
    await writeFile(join(opts.outDir, 'latest.json'), JSON.stringify(json, null, 2) + '\n');
    await writeFile(join(opts.outDir, 'latest.svg'), ratioChart(ratios, title, emptyReason));
    progress(`wrote ${join(opts.outDir, 'latest.json')} and latest.svg (${json.meta.durationSecs} s)`);
  } finally {
    await reg.stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
