#!/usr/bin/env node
// The prune-sweep chart for docs/: test score against encoder parameters (log scale), one series
// per set of structures, from one or more `sweep.json` files (a sweep run in parts, e.g. its two
// series in two run folders, charts as one). Plain SVG, no dependencies.
//
//   usage: node scripts/sweep-chart.mjs SWEEP.json [SWEEP2.json ...] --out CHART.svg [--title T]
import * as fs from 'node:fs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const out = opt('--out');
const title = opt('--title') ?? 'prune-sweep: test score against encoder parameters';
if (!out || args.length === 0) {
  console.error('usage: node scripts/sweep-chart.mjs SWEEP.json [SWEEP2.json ...] --out CHART.svg [--title T]');
  process.exit(2);
}

const rows = [];
for (const f of args) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    console.error(`${f}: ${e.code === 'ENOENT' ? 'file not found' : `not JSON (${e.message})`}`);
    process.exit(2);
  }
  if (!Array.isArray(doc.rows)) {
    console.error(`${f}: no "rows" array (not a prune-sweep sweep.json)`);
    process.exit(2);
  }
  for (const [i, r] of doc.rows.entries()) {
    if (typeof r.score !== 'number' || typeof r.encoder_params !== 'number' || !(r.encoder_params > 0)) {
      console.error(`${f}: rows[${i}]: needs a numeric score and a positive encoder_params`);
      process.exit(2);
    }
    // The unpruned row appears in every part: keep one.
    if (r.structures === 'none' && rows.some((x) => x.structures === 'none')) continue;
    rows.push(r);
  }
}

const LABELS = {
  none: 'unpruned',
  'heads+FFN': 'heads + FFN',
  'heads+FFN+layers+hidden': 'all four (heads, FFN, layers, hidden)',
};
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b'];
const series = [...new Set(rows.map((r) => r.structures))].sort((a, b) =>
  a === 'none' ? -1 : b === 'none' ? 1 : a.localeCompare(b),
);
const color = (s) => (s === 'none' ? '#000' : COLORS[series.filter((x) => x !== 'none').indexOf(s) % COLORS.length]);

const W = 720,
  H = 440,
  L = 70,
  R = 20,
  T = 40,
  B = 60;
const xs = rows.map((r) => r.encoder_params),
  ys = rows.map((r) => r.score);
const x0 = Math.log10(Math.min(...xs) / 1.25),
  x1 = Math.log10(Math.max(...xs) * 1.25);
const yPad = Math.max(0.002, (Math.max(...ys) - Math.min(...ys)) * 0.08);
const y0 = Math.min(...ys) - yPad,
  y1 = Math.max(...ys) + yPad;
const px = (v) => L + ((Math.log10(v) - x0) / (x1 - x0)) * (W - L - R);
const py = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmtK = (v) => (v >= 1e6 ? `${+(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${+(v / 1e3).toFixed(0)}k` : String(v));

const svg = [];
svg.push(
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
);
svg.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
svg.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
// x ticks at 1, 2 and 5 times powers of ten
for (let e = Math.floor(x0); e <= Math.ceil(x1); e++)
  for (const m of [1, 2, 5]) {
    const v = m * 10 ** e;
    if (Math.log10(v) < x0 || Math.log10(v) > x1) continue;
    svg.push(`<line x1="${px(v)}" x2="${px(v)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`);
    svg.push(`<text x="${px(v)}" y="${H - B + 16}" text-anchor="middle">${fmtK(v)}</text>`);
  }
const step = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05].find((s) => (y1 - y0) / s <= 8) ?? 0.1;
for (let v = Math.ceil(y0 / step) * step; v <= y1; v += step) {
  svg.push(`<line x1="${L}" x2="${W - R}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/>`);
  svg.push(`<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
}
svg.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#888"/>`);
svg.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">encoder parameters (log scale)</text>`);
const yTitle = 'test score (1 - mlogloss)';
svg.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${yTitle}</text>`);
const at = (r) => ({ x: px(r.encoder_params).toFixed(1), y: py(r.score).toFixed(1) });
for (const s of series) {
  const pts = rows.filter((r) => r.structures === s).sort((a, b) => a.encoder_params - b.encoder_params);
  const line = pts.map((r) => `${at(r).x},${at(r).y}`).join(' ');
  if (pts.length > 1) svg.push(`<polyline fill="none" stroke="${color(s)}" stroke-width="1.5" points="${line}"/>`);
  for (const r of pts) {
    const { x, y } = at(r);
    const pct = typeof r.encoder_kept === 'number' ? `${(100 * r.encoder_kept).toFixed(1)}%` : '';
    const tip = `${r.config}: ${r.score.toFixed(4)} at ${r.encoder_params} encoder parameters ${pct}`;
    svg.push(`<circle cx="${x}" cy="${y}" r="4" fill="${color(s)}"><title>${esc(tip)}</title></circle>`);
    svg.push(`<text x="${+x + 6}" y="${+y - 6}" fill="${color(s)}" font-size="10">${esc(pct)}</text>`);
  }
}
// The legend bottom right: the large models score high, so that corner stays empty.
series.forEach((s, i) => {
  const y = H - B - 10 - (series.length - 1 - i) * 16;
  svg.push(`<circle cx="${W - R - 250}" cy="${y - 4}" r="4" fill="${color(s)}"/>`);
  svg.push(`<text x="${W - R - 240}" y="${y}">${esc(LABELS[s] ?? s)}</text>`);
});
svg.push('</svg>');
fs.writeFileSync(out, svg.join('\n') + '\n');
console.log(`${out}: ${rows.length} points in ${series.length} series`);
