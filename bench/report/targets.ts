/** The project's performance targets, judged from this run's medians. */
import type { ScenarioResult } from '../results.js';

interface TargetDef {
  readonly label: string;
  readonly scenario: string;
  readonly metric: string;
  readonly subject: string;
  /** Compare with this peer's median (limit is a ratio), or null (limit is an absolute value). */
  readonly peer: string | null;
  readonly limit: number;
  readonly unit: string;
}

export interface TargetResult {
  readonly label: string;
  readonly limit: string;
  /** true met, false not met, null not measured. */
  readonly met: boolean | null;
  readonly value: number | null;
  readonly detail: string;
}

const vs = (label: string, scenario: string, metric: string, peer: string, limit: number): TargetDef => ({
  label,
  scenario,
  metric,
  subject: 'tsproxy',
  peer,
  limit,
  unit: '×',
});

const TARGETS: readonly TargetDef[] = [
  vs('bridge bulk upload CPU s/GB (ingress+peer) vs ATS tls_bridge', 'bridge-bulk', 'up_cpu', 'ats-tls-bridge', 0.9),
  vs('bridge bulk download CPU s/GB (ingress+peer) vs ATS tls_bridge', 'bridge-bulk', 'down_cpu', 'ats-tls-bridge', 0.9),
  vs('bridge bulk upload CPU s/GB (ingress+peer) vs stunnel pair', 'bridge-bulk', 'up_cpu', 'stunnel', 1.0),
  vs('bridge bulk download CPU s/GB (ingress+peer) vs stunnel pair', 'bridge-bulk', 'down_cpu', 'stunnel', 1.0),
  vs('bridge set-up p50 vs ATS tls_bridge', 'bridge-setup', 'seq_p50', 'ats-tls-bridge', 0.5),
  vs('bridge set-up p50 vs stunnel pair', 'bridge-setup', 'seq_p50', 'stunnel', 1.0),
  vs('bridge CPU per tunnel (50 concurrent) vs stunnel pair', 'bridge-setup', 'conc_cpu_us', 'stunnel', 1.0),
  vs('plain CONNECT CPU per CONNECT (concurrent) vs squid', 'connect', 'conc_cpu_us', 'squid', 1.0),
  vs('plain CONNECT p99 vs squid', 'connect', 'seq_p99', 'squid', 1.0),
  vs('SNI router CPU per routed handshake vs HAProxy', 'sni', 'cpu_us', 'haproxy', 1.0),
  vs('SNI routed bulk CPU s/GB vs HAProxy', 'sni', 'bulk_cpu', 'haproxy', 1.2),
  { label: 'memory per idle tunnel, plain CONNECT', scenario: 'idle', metric: 'kb_per_tunnel', subject: 'tsproxy', peer: null, limit: 16, unit: 'KB' },
  { label: 'memory per idle tunnel, bridged (both proxies)', scenario: 'idle', metric: 'kb_per_tunnel', subject: 'tsproxy-bridge', peer: null, limit: 100, unit: 'KB' },
];

function median(sc: ScenarioResult, subject: string, metric: string): { value: number | null; why: string } {
  const s = sc.subjects.find((x) => x.name === subject);
  if (s === undefined) return { value: null, why: `${subject} not in this scenario` };
  if (s.skipped !== null) return { value: null, why: `${subject} skipped: ${s.skipped.split(/[;|]/)[0]?.trim() ?? ''}` };
  const v = s.summary[metric]?.median ?? Number.NaN;
  if (!Number.isFinite(v)) return { value: null, why: `${subject} has no ${metric} (${s.errors[0] ?? 'no successful run'})` };
  return { value: v, why: '' };
}

export function judgeTargets(results: readonly ScenarioResult[]): TargetResult[] {
  return TARGETS.map((t) => {
    const limit = t.peer === null ? `<= ${t.limit} ${t.unit}` : `<= ${t.limit.toFixed(1)}× ${t.peer}`;
    const notMeasured = (detail: string): TargetResult => ({ label: t.label, limit, met: null, value: null, detail });
    const sc = results.find((r) => r.id === t.scenario);
    if (sc === undefined) return notMeasured(`scenario ${t.scenario} not run`);
    const ts = median(sc, t.subject, t.metric);
    if (ts.value === null) return notMeasured(ts.why);
    if (t.peer === null) {
      return { label: t.label, limit, met: ts.value <= t.limit, value: ts.value, detail: `${ts.value.toFixed(1)} ${t.unit}` };
    }
    const peer = median(sc, t.peer, t.metric);
    if (peer.value === null) return notMeasured(peer.why);
    const ratio = ts.value / peer.value;
    return { label: t.label, limit, met: ratio <= t.limit, value: ratio, detail: `${ratio.toFixed(2)}× (${ts.value.toPrecision(3)} vs ${peer.value.toPrecision(3)})` };
  });
}

/** The 'targets' block printed at the end. */
export function formatTargets(targets: readonly TargetResult[]): string {
  const tag = (m: boolean | null): string => (m === null ? '[n/a]    ' : m ? '[met]    ' : '[NOT MET]');
  const lines = targets.map((t) => `  ${tag(t.met)} ${t.label} (${t.limit}): ${t.detail}`);
  const met = targets.filter((t) => t.met === true).length;
  const missed = targets.filter((t) => t.met === false).length;
  const na = targets.filter((t) => t.met === null).length;
  return `targets: ${met} met, ${missed} not met, ${na} not measured\n${lines.join('\n')}\n`;
}
