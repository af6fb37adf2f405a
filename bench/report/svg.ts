/**
 * A hand-written SVG chart of the tsproxy / peer ratios: one horizontal bar per ratio, a dashed
 * line at 1.0 (below it tsproxy is better: every charted metric is lower-is-better), bars past the
 * right edge clipped and marked.
 */
import type { Ratio } from './ratios.js';

const W = 900;
const LABEL_W = 430;
const PLOT_W = 380;
const ROW_H = 22;
const TOP = 56;
const MAX_SCALE = 4;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function ratioChart(ratios: readonly Ratio[], title: string, emptyReason: string): string {
  const rows = Math.max(1, ratios.length);
  const h = TOP + rows * ROW_H + 40;
  const scale = Math.min(MAX_SCALE, Math.max(2, ...ratios.map((r) => r.ratio * 1.1)));
  const x = (v: number): number => LABEL_W + (Math.min(v, scale) / scale) * PLOT_W;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${h}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="38" fill="#555">tsproxy / peer, medians; lower is better (below 1.0 tsproxy uses less CPU, time or memory)</text>`,
  ];
  if (ratios.length === 0) {
    parts.push(`<text x="10" y="${TOP + 14}" fill="#a00">${esc(emptyReason)}</text>`);
  }
  const bottom = TOP + rows * ROW_H;
  // Grid first, so bars and labels draw over it.
  for (let v = 0; v <= Math.floor(scale); v++) {
    const gx = x(v).toFixed(1);
    parts.push(
      `<line x1="${gx}" y1="${TOP - 4}" x2="${gx}" y2="${bottom}" stroke="${v === 1 ? '#000' : '#ddd'}"${v === 1 ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${gx}" y="${bottom + 16}" text-anchor="middle"${v === 1 ? ' font-weight="bold"' : ' fill="#555"'}>${v.toFixed(1)}</text>`,
    );
  }
  parts.push(`<line x1="${LABEL_W}" y1="${bottom}" x2="${LABEL_W + PLOT_W}" y2="${bottom}" stroke="#999"/>`);
  ratios.forEach((r, i) => {
    const y = TOP + i * ROW_H;
    const good = r.ratio <= 1;
    const label = `${r.scenario} · ${r.label} · ${r.subject === 'tsproxy' ? '' : `${r.subject} `}vs ${r.peer}`;
    parts.push(
      `<text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end">${esc(label)}</text>`,
      `<rect x="${LABEL_W}" y="${y + 4}" width="${(x(r.ratio) - LABEL_W).toFixed(1)}" height="${ROW_H - 8}" fill="${good ? '#3a9a5b' : '#c8553d'}" fill-opacity="0.9"/>`,
      `<text x="${(x(r.ratio) + 4).toFixed(1)}" y="${y + 15}">${r.ratio.toFixed(2)}${r.ratio > scale ? ' ▶' : ''}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
