/// <reference lib="dom" />
// The pruning report panel: the before/after table (size, speed, metrics), the layers and hidden
// size a deeper pruning kept, a heatmap of the heads each layer kept (coloured by importance) with
// its FFN share (whole layers removed struck out), and a sweep's score vs parameters scatter
// (bubble size: latency), one series per set of structures pruned, with its Pareto front; an
// evaluation's metrics and its per-label table, worst labels first. Label names come from user
// files: they are only ever text nodes.
import { definitionsOf, formatMB, hiddenText, layersKeptText } from '../figures';
import { paretoFront, sweepAxis, sweepSeries, sweepX } from '../panelData/report';
import type { EvaluationView } from '../panelData/evaluation';
import type { ReportLayer, ReportMessage, ReportStructure, SizeRow, SweepRow } from '../panelData/report';
import {
  Chart,
  chartBox,
  cssVar,
  el,
  fmt,
  onMessage,
  palette,
  root,
  setTitle,
  showProblems,
  table,
  themeCharts,
  vscode,
} from './common';

let charts: Chart[] = [];

function render(r: ReportMessage): void {
  charts.forEach((c) => c.destroy());
  charts = [];
  setTitle(r.title);
  showProblems(r.problems);
  const parts: HTMLElement[] = [];
  const links = [r.file, r.sweepFile, r.evaluationFile].filter((f): f is string => !!f);
  if (links.length)
    parts.push(
      el(
        'p',
        { class: 'note' },
        ...links.flatMap((f, i) => [
          i ? ' · ' : '',
          el(
            'a',
            { onclick: () => vscode.postMessage({ type: 'open', path: f }), title: 'Open the JSON file' },
            f.split(/[\\/]/).slice(-2).join('/'),
          ),
        ]),
      ),
    );
  if (r.evaluation) parts.push(...evaluationParts(r.evaluation));
  if (r.before || r.after) parts.push(el('h2', {}, 'Before / after'), sizeTable(r.before, r.after));
  const whens = Object.keys(r.metrics);
  if (whens.length) {
    const keys = [...new Set(whens.flatMap((w) => Object.keys(r.metrics[w])))];
    parts.push(
      el('h2', {}, 'Metrics'),
      table(
        ['metric', ...whens.map((w) => w.replace(/_/g, ' '))],
        keys.map((k) => [k, ...whens.map((w) => fmtOr(r.metrics[w][k]))]),
      ),
    );
  }
  if (r.structure) parts.push(el('h2', {}, 'Layers and hidden size'), structureTable(r.structure));
  if (r.layers.length) parts.push(el('h2', {}, 'Heads and FFN kept per layer'), heatmap(r.layers));
  // A target not met says why (the engine's prune report: minimum per layer, multiple_of, even masking).
  if (r.why.length)
    parts.push(
      el('h2', {}, 'Targets not met'),
      table(
        ['', 'target', 'kept', 'why'],
        r.why.map((n) => [n.unit === 'heads' ? 'heads' : 'FFN neurons', n.target, n.kept, n.reasons.join('; ')]),
      ),
    );
  let scatter: HTMLCanvasElement | undefined;
  if (r.sweep.length) {
    const box = chartBox();
    scatter = box.canvas;
    const axis = sweepAxis(r.sweep);
    parts.push(
      el('h2', {}, `Sweep: score vs ${axis.title}`),
      el(
        'p',
        { class: 'legend' },
        'One colour per set of structures pruned. Bubble size: latency. ' +
          `Line: the Pareto front (no other config has a higher score with fewer ${axis.title}).`,
      ),
      box.box,
      sweepTable(r.sweep),
    );
  }
  // Every metric shown is defined where it is shown.
  const shownKeys = [
    ...(r.before || r.after ? ['mb', 'params', 'flops', 'latency'] : []),
    ...Object.values(r.metrics).flatMap((m) => Object.keys(m)),
    ...(r.sweep.length ? ['score'] : []),
    ...(r.evaluation ? r.evaluation.metrics.map(([k]) => k) : []),
  ];
  const defs = definitionsOf(shownKeys);
  if (parts.length && defs.length) parts.push(el('p', { class: 'legend definitions' }, defs.join(' · ')));
  const nothing = 'Nothing to show: the report has no sizes, layers, sweep rows or evaluation.';
  if (parts.length === 0) parts.push(el('p', { class: 'empty' }, nothing));
  root().replaceChildren(...parts);
  if (scatter) charts.push(sweepChart(scatter, r.sweep));
}

/** The evaluation: overall metrics, where the thresholds come from, and the labels worst first. */
function evaluationParts(e: EvaluationView): HTMLElement[] {
  const shown = e.metrics.filter(([, v]) => v !== undefined);
  // The three highest log-losses stand out (the list is sorted worst first).
  const worst = e.labels.slice(0, Math.min(3, Math.floor(e.labels.length / 2)));
  return [
    el('h2', {}, 'Evaluation'),
    el('p', { class: 'note' }, `${e.model} on ${e.data}${e.rows !== undefined ? ` (${e.rows} rows)` : ''}`),
    table(
      ['metric', 'value'],
      shown.map(([k, v]) => [k, fmtOr(v)]),
    ),
    el('p', { class: 'note' }, e.thresholdsNote),
    ...(e.singleLabel ? perClassParts(e) : perLabelParts(e, worst)),
  ];
}

/** Single-label: per class, in label order, precision / recall / F1 of the argmax decisions. */
function perClassParts(e: EvaluationView): HTMLElement[] {
  return [
    el('h2', {}, 'Per class'),
    el('p', { class: 'legend' }, 'Support: rows of the class in the file. Precision, recall and F1 of the argmax.'),
    table(
      ['label', 'name', 'support', 'precision', 'recall', 'F1'],
      e.labels.map((l) => [String(l.label), l.name, ...[l.support, l.precision, l.recall, l.f1].map(fmtOr)]),
      e.labels.map(() => [undefined, 'name']),
    ),
  ];
}

function perLabelParts(e: EvaluationView, worst: EvaluationView['labels']): HTMLElement[] {
  return [
    el('h2', {}, 'Per label, worst log-loss first'),
    el('p', { class: 'legend' }, "Support: positives in the file. F1 at the label's threshold. AUC –: one class only."),
    table(
      ['label', 'name', 'support', 'log-loss', 'ROC-AUC', 'F1', 'threshold'],
      e.labels.map((l) => {
        const values = [l.support, l.logloss, l.auc, l.f1, l.threshold].map(fmtOr);
        return [String(l.label), l.name, ...values];
      }),
      e.labels.map((l) => [undefined, 'name', undefined, worst.includes(l) ? 'worse' : undefined]),
    ),
  ];
}

function fmtOr(v: number | undefined): string {
  return v === undefined ? '–' : fmt(v);
}

function sizeTable(before: SizeRow | undefined, after: SizeRow | undefined): HTMLTableElement {
  const rows: [string, keyof SizeRow][] = [
    ['parameters', 'params'],
    ['size', 'mb'],
    ['FLOPs', 'flops'],
    ['latency (ms)', 'latency_ms'],
  ];
  const present = rows.filter(([, k]) => before?.[k] !== undefined || after?.[k] !== undefined);
  return table(
    ['', 'before', 'after', 'after / before'],
    present.map(([label, k]) => {
      const b = before?.[k];
      const a = after?.[k];
      const f = k === 'mb' ? (v: number | undefined) => (v === undefined ? '–' : formatMB(v)) : fmtOr;
      return [label, f(b), f(a), b && a !== undefined ? `${((100 * a) / b).toFixed(1)}%` : '–'];
    }),
    present.map(([, k]) => {
      const b = before?.[k];
      const a = after?.[k];
      return [
        undefined,
        undefined,
        undefined,
        b !== undefined && a !== undefined ? (a < b ? 'better' : a > b ? 'worse' : undefined) : undefined,
      ];
    }),
  );
}

/** Layers kept (original ids), hidden size, head size and the budget of a deeper pruning. */
function structureTable(s: ReportStructure): HTMLTableElement {
  const rows: [string, string][] = [
    ['layers', layersKeptText(s.layersKept, s.layersBefore)],
    ['hidden size', hiddenText(s.hiddenAfter, s.hiddenBefore)],
  ];
  if (s.headSize !== undefined) rows.push(['head size', String(s.headSize)]);
  if (s.budget) {
    const { target, reached, before, counts } = s.budget;
    const wanted = target < 1 ? `${(100 * target).toFixed(1)}%` : `${fmt(target)} parameters`;
    const got = before > 0 ? ` (${((100 * reached) / before).toFixed(1)}% of ${fmt(before)})` : '';
    rows.push([`${counts} budget`, `${wanted} wanted, ${fmt(reached)} reached${got}`]);
  }
  return table(['', 'kept'], rows);
}

/**
 * One row per layer: a cell per original head (kept ones shaded by importance), then FFN kept; a
 * layer pruned whole is struck out, and the layer's own importance shows when it was scored.
 */
function heatmap(layers: ReportLayer[]): HTMLElement {
  const heads = Math.max(...layers.map((l) => l.headsTotal));
  const all = layers.flatMap((l) => l.headImportance);
  const max = Math.max(1e-12, ...all.map(Math.abs));
  const color = cssVar('--vscode-charts-blue', '#3794ff');
  const grid = el('div', { class: 'heatmap' });
  grid.style.gridTemplateColumns = `auto repeat(${heads}, minmax(28px, 56px)) auto auto`;
  grid.append(
    el('span', { class: 'label' }, ''),
    ...[...Array(heads).keys()].map((h) => el('span', { class: 'label' }, `h${h}`)),
    el('span', { class: 'label' }, 'FFN kept'),
    el('span', { class: 'label' }, ''),
  );
  const layerMax = Math.max(1e-12, ...layers.map((l) => Math.abs(l.layerImportance ?? 0)));
  for (const l of layers) {
    const layerImp = l.layerImportance !== undefined ? `, layer importance ${fmt(l.layerImportance)}` : '';
    grid.append(
      el(
        'span',
        {
          class: `label${l.removed ? ' removed-layer' : ''}`,
          title: `layer ${l.layer}: ${l.removed ? 'removed' : 'kept'}${layerImp}`,
        },
        `layer ${l.layer}${l.removed ? ' (removed)' : ''}` +
          (l.layerImportance !== undefined ? ` · ${(Math.abs(l.layerImportance) / layerMax).toFixed(2)}` : ''),
      ),
    );
    const kept = new Set(l.headsKept);
    for (let h = 0; h < heads; h++) {
      const imp = l.headImportance[h];
      const isKept = kept.has(h);
      // Importance scores have no fixed scale (gradients x activations): show them relative to
      // the most important head of the model.
      const rel = imp !== undefined ? Math.abs(imp) / max : undefined;
      const cell = el(
        'div',
        {
          class: `cell${isKept ? '' : ' removed'}`,
          title:
            `layer ${l.layer} head ${h}: ${isKept ? 'kept' : l.removed ? 'removed with its layer' : 'removed'}` +
            `${imp !== undefined ? `, importance ${fmt(imp)}` : ''}`,
        },
        rel !== undefined ? rel.toFixed(2) : '',
      );
      if (h >= l.headsTotal && !l.removed) cell.style.visibility = 'hidden';
      else if (isKept) {
        // Opacity from importance, so the kept heads show which mattered most.
        cell.style.backgroundColor = color;
        cell.style.opacity = String(rel !== undefined ? 0.3 + 0.7 * rel : 0.6);
      }
      grid.append(cell);
    }
    const bar = el('div', { class: 'bar' });
    bar.style.width = `${(100 * l.ffnKept) / Math.max(1, l.ffnTotal)}%`;
    grid.append(
      el('div', { class: 'bar-track', title: l.removed ? 'layer removed' : `FFN ${l.ffnKept} of ${l.ffnTotal}` }, bar),
      el('span', { class: 'label' }, l.removed ? 'removed' : `${l.ffnKept}/${l.ffnTotal}`),
    );
  }
  const keptHeads = layers.reduce((s, l) => s + l.headsKept.length, 0);
  const totalHeads = layers.reduce((s, l) => s + l.headsTotal, 0);
  const removedLayers = layers.filter((l) => l.removed).length;
  const scored = layers.some((l) => l.layerImportance !== undefined);
  return el(
    'div',
    {},
    el(
      'p',
      { class: 'legend' },
      `${keptHeads} of ${totalHeads} heads kept` +
        (removedLayers ? `, ${removedLayers} of ${layers.length} layers removed whole` : '') +
        '. Shaded: kept, darker = more important; struck out: removed. ' +
        'Numbers: importance relative to the most important head' +
        (scored ? ' (after a layer: its importance relative to the most important layer).' : '.'),
    ),
    grid,
  );
}

/**
 * The sweep's rows, best score first: what each prunes, its sizes (encoder: the share of the
 * unpruned one it kept) and, for more than heads+FFN, the score against the smallest heads+FFN
 * row at least as large, in encoder parameters and in the whole model's.
 */
function sweepTable(rows: SweepRow[]): HTMLTableElement {
  const front = new Set(paretoFront(rows, sweepAxis(rows).key));
  const sorted = [...rows].sort((a, b) => b.score - a.score);
  const structures = rows.some((r) => r.structures !== undefined);
  const encoder = rows.some((r) => r.encoder_params !== undefined);
  const vs = rows.some((r) => r.vs !== undefined);
  const vsModel = rows.some((r) => r.vsModel !== undefined);
  const head = [
    'config',
    ...(structures ? ['structures'] : []),
    'score',
    'parameters',
    ...(encoder ? ['encoder parameters'] : []),
    'size',
    'latency (ms)',
    ...(vs ? ['vs heads+FFN'] : []),
    ...(vsModel ? ['vs heads+FFN (whole model)'] : []),
    'Pareto',
  ];
  const pct = (r: SweepRow) => (r.encoder_kept !== undefined ? ` (${(100 * r.encoder_kept).toFixed(1)}%)` : '');
  const vsText = (v: SweepRow['vs'], of: string) => {
    if (!v) return '';
    const delta = `${v.scoreDelta >= 0 ? '+' : ''}${v.scoreDelta.toFixed(4)}`;
    return `${delta} vs ${v.config} (${v.ratio.toFixed(2)}× ${of})`;
  };
  const verdict = (v: SweepRow['vs']) =>
    !v ? undefined : v.scoreDelta > 0 ? 'better' : v.scoreDelta < 0 ? 'worse' : undefined;
  return table(
    head,
    sorted.map((r) => [
      r.config,
      ...(structures ? [r.structures ?? '–'] : []),
      r.score,
      r.params,
      ...(encoder ? [r.encoder_params === undefined ? '–' : `${fmt(r.encoder_params)}${pct(r)}`] : []),
      r.mb === undefined ? '–' : formatMB(r.mb),
      fmtOr(r.latency_ms),
      ...(vs ? [vsText(r.vs, 'its encoder')] : []),
      ...(vsModel ? [vsText(r.vsModel, 'its size')] : []),
      front.has(r) ? '✓' : '',
    ]),
    sorted.map((r) =>
      head.map((h) =>
        h === 'vs heads+FFN' ? verdict(r.vs) : h === 'vs heads+FFN (whole model)' ? verdict(r.vsModel) : undefined,
      ),
    ),
  );
}

function sweepChart(canvas: HTMLCanvasElement, rows: SweepRow[]): Chart {
  const colors = palette();
  const lat = rows.map((r) => r.latency_ms ?? 0);
  const maxLat = Math.max(1e-9, ...lat);
  const axis = sweepAxis(rows);
  const front = paretoFront(rows, axis.key);
  const series = sweepSeries(rows);
  const frontColor = colors[series.length % colors.length];
  return new Chart(canvas, {
    type: 'bubble',
    data: {
      datasets: [
        // One series (and legend entry) per set of structures pruned.
        ...series.map((s, i) => ({
          label: s.label,
          data: s.rows.map((r) => ({
            x: sweepX(r, axis.key),
            y: r.score,
            r: r.latency_ms !== undefined ? 4 + (10 * r.latency_ms) / maxLat : 6,
          })),
          backgroundColor: colors[i % colors.length],
        })),
        // A line through the front, drawn by a line dataset on the same axes.
        {
          type: 'line',
          label: 'Pareto front',
          data: front.map((r) => ({ x: sweepX(r, axis.key), y: r.score, r: 0 })),
          borderColor: frontColor,
          backgroundColor: frontColor,
          pointRadius: 0,
          borderWidth: 1.5,
        } as never,
      ],
    },
    options: {
      scales: {
        x: { type: 'linear', title: { display: true, text: axis.title } },
        y: { title: { display: true, text: 'score' } },
      },
      plugins: {
        legend: { display: true },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const r =
                ctx.datasetIndex < series.length ? series[ctx.datasetIndex].rows[ctx.dataIndex] : front[ctx.dataIndex];
              const latency = r.latency_ms !== undefined ? `, ${fmt(r.latency_ms)} ms` : '';
              const what = r.structures !== undefined ? ` (${r.structures})` : '';
              return `${r.config}${what}: score ${fmt(r.score)}, ${fmt(sweepX(r, axis.key))} ${axis.title}${latency}`;
            },
          },
        },
      },
    },
  });
}

export function startReport(): void {
  themeCharts();
  onMessage((m) => {
    if (m.type !== 'report' || !Array.isArray(m.layers) || !Array.isArray(m.sweep)) return;
    const r = m as unknown as ReportMessage;
    render(r);
    // What the serializer reopens after a reload.
    vscode.setState({ files: [r.file, r.sweepFile, r.evaluationFile].filter(Boolean) });
  });
  vscode.postMessage({ type: 'ready' });
}
