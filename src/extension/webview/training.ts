/// <reference lib="dom" />
// The Training Curves panel: one or more runs overlaid, per stage two charts: the loss (left axis)
// and learning rate (right axis) per step, and the epoch metrics with losses on the left axis and
// scores in [0, 1] on the right. The extension sends each run's curves (its history.jsonl, or
// run.json's final metrics for older runs) and then the live events of a run in progress. The page
// keeps the list of runs in its webview state, so a reloaded window reopens the same runs.
//
// TensorBoard's controls: a smoothing slider (a debiased exponential moving average; the raw curve
// stays faint behind the smoothed one), zoom with the wheel or a drag and reset (chartjs-plugin-zoom;
// double-click resets), a log-scale toggle for the loss, step or wall-time x axis, and export of a
// chart as PNG and of every series as CSV (saved where the user picks, by the extension).
import type { Plugin } from 'chart.js';
import zoomPlugin from 'chartjs-plugin-zoom';
import { definitionsOf } from '../figures';
import { axisRange, curvesCsv, epochRange, finalMetricsOnly, firstTime, metricAxis } from '../panelData/training';
import { smoothEMA, stepX, type RunCurves, type TrainingMessage, type TrainingSeries } from '../panelData/training';
import { actions, Chart, chartBox, cssVar, el, fmt, onMessage, palette, root, setTitle, showProblems } from './common';
import { themeCharts, vscode } from './common';

Chart.register(zoomPlugin);

interface Controls {
  smoothing: number; // 0 .. 0.99
  log: boolean; // loss axis logarithmic
  axis: 'step' | 'time';
}

interface State {
  runs: { id: string; label: string }[];
  controls?: Controls;
}

let controls: Controls = { smoothing: 0.6, log: false, axis: 'step' };

let title = 'Training Curves';
let runs: RunCurves[] = [];
const charts = new Map<string, { steps?: Chart; epochs?: Chart }>(); // stage -> its charts
const STYLES = ['circle', 'rect', 'triangle', 'rectRot', 'star', 'crossRot'] as const;
const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3]];

const highContrast = () => document.body.classList.contains('vscode-high-contrast');
const width = (w: number) => (highContrast() ? w + 1 : w);
/** Loss and learning rate in different theme colours, each run its own pair. */
const seriesColor = (run: number, kind: 'loss' | 'lr') => palette()[(2 * run + (kind === 'lr' ? 1 : 0)) % 6];
/** A colour with alpha, for the raw curve behind the smoothed one. */
const faint = (c: string) => (/^#[0-9a-f]{6}$/i.test(c) ? `${c}55` : c);

/** The stages of all runs, in the order they first appear. */
function stages(): string[] {
  return [...new Set(runs.flatMap((r) => r.series.map((s) => s.stage)))];
}

const seriesOf = (r: RunCurves, stage: string) => r.series.find((s) => s.stage === stage);

/** Values written next to the points of short series (one epoch, a stage's final metrics). */
const valueLabels: Plugin = {
  id: 'valueLabels',
  afterDatasetsDraw(chart) {
    const ctx = chart.ctx;
    ctx.save();
    ctx.fillStyle = cssVar('--vscode-foreground', '#ccc');
    ctx.font = `11px ${cssVar('--vscode-font-family', 'sans-serif')}`;
    ctx.textAlign = 'left';
    // Labels of points at the same place (one-point charts) are moved apart, never drawn over each other.
    const taken: { x: number; y: number }[] = [];
    chart.data.datasets.forEach((ds, i) => {
      const meta = chart.getDatasetMeta(i);
      if (meta.hidden || ds.data.length > 3) return;
      meta.data.forEach((p, j) => {
        const v = (ds.data[j] as { y: number }).y;
        let y = p.y + 4;
        while (taken.some((t) => Math.abs(t.x - p.x) < 60 && Math.abs(t.y - y) < 12)) y += 12;
        taken.push({ x: p.x, y });
        ctx.fillText(fmt(v), p.x + 9, y);
      });
    });
    ctx.restore();
  },
};

function render(): void {
  charts.forEach((c) => {
    c.steps?.destroy();
    c.epochs?.destroy();
  });
  charts.clear();
  setTitle(title);
  renderActions();
  showProblems(runs.flatMap((r) => r.problems.map((p) => `${r.label}: ${p}`)));
  if (runs.every((r) => r.series.length === 0)) {
    root().replaceChildren(
      el(
        'p',
        { class: 'empty' },
        runs.length
          ? 'No curves yet. They appear here while Pretrain, Fine-tune, Re-fine-tune or the pipeline run.'
          : 'No run shown. Add one with "Add run…", or start a training stage.',
      ),
    );
    return;
  }
  root().replaceChildren();
  for (const stage of stages()) addStage(stage);
  // Every metric shown is defined where it is shown.
  const keys = [
    'loss',
    'lr',
    ...runs.flatMap((r) => r.series.flatMap((s) => s.epochs.flatMap((e) => Object.keys(e.metrics)))),
  ];
  root().append(el('p', { class: 'legend definitions' }, definitionsOf(keys).join(' · ')));
}

/** The controls above the charts: smoothing, log scale, x axis, CSV export. */
function controlBar(): HTMLElement {
  const slider = document.createElement('input');
  slider.type = 'range';
  slider.min = '0';
  slider.max = '0.99';
  slider.step = '0.01';
  slider.value = String(controls.smoothing);
  slider.id = 'smoothing';
  slider.title = "Smoothing: TensorBoard's exponential moving average (debiased); 0 = raw";
  const value = el('span', { class: 'value' }, controls.smoothing.toFixed(2));
  slider.addEventListener('input', () => {
    controls.smoothing = Number(slider.value);
    value.textContent = controls.smoothing.toFixed(2);
    restyleSteps();
    save();
  });
  const log = document.createElement('input');
  log.type = 'checkbox';
  log.id = 'log-scale';
  log.checked = controls.log;
  log.addEventListener('change', () => {
    controls.log = log.checked;
    render();
    save();
  });
  const axis = document.createElement('select');
  axis.id = 'x-axis';
  for (const [v, t] of [
    ['step', 'step'],
    ['time', 'wall time (min)'],
  ]) {
    const o = document.createElement('option');
    o.value = v;
    o.textContent = t;
    o.selected = controls.axis === v;
    axis.append(o);
  }
  axis.addEventListener('change', () => {
    controls.axis = axis.value === 'time' ? 'time' : 'step';
    render();
    save();
  });
  const csv = el(
    'button',
    { title: 'Every step and epoch of the runs shown, as CSV', onclick: exportCsv },
    'Export CSV',
  );
  csv.id = 'export-csv';
  return el(
    'div',
    { class: 'controls' },
    el('label', { title: slider.title }, 'Smoothing ', slider, value),
    el('label', {}, log, ' log scale (loss)'),
    el('label', {}, 'x axis ', axis),
    csv,
    el('span', { class: 'legend' }, 'Wheel or drag on a chart: zoom · shift+drag: pan · double-click: reset'),
  );
}

function exportCsv(): void {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  vscode.postMessage({
    type: 'export',
    format: 'csv',
    name: `curves-${stamp}.csv`,
    data: curvesCsv(runs, controls.smoothing),
  });
}

function exportPng(stage: string, chart: Chart): void {
  vscode.postMessage({
    type: 'export',
    format: 'png',
    name: `${stage.replace(/[^\w.-]/g, '_')}-curves.png`,
    data: chart.toBase64Image(),
  });
}

/** The smoothed curves follow the slider without laying the page out again. */
function restyleSteps(): void {
  for (const [stage, c] of charts) {
    if (!c.steps) continue;
    c.steps.data.datasets = stepDatasets(stage);
    c.steps.update('none');
  }
}

function renderActions(): void {
  document.getElementById('controls')?.remove();
  const bar = controlBar();
  bar.id = 'controls';
  root().before(bar);
  const chips = runs.map((r, i) => {
    const swatch = el('span', { class: 'swatch' });
    swatch.style.background = seriesColor(i, 'loss'); // the colour of its loss curve
    const onclick = () => vscode.postMessage({ type: 'remove-run', run: r.id });
    const remove = el('button', { class: 'icon', title: `Stop showing ${r.label}`, onclick }, '×');
    const src = r.source === 'run.json' ? ' (run.json: final metrics only)' : '';
    return el('span', { class: 'run-chip', title: r.id + src }, swatch, `${r.label}${src}`, remove);
  });
  const add = el('button', { onclick: () => vscode.postMessage({ type: 'add-run' }) }, 'Add run…');
  actions().replaceChildren(...chips, add);
}

function addStage(stage: string): void {
  const withSteps = runs.filter((r) => (seriesOf(r, stage)?.steps.length ?? 0) > 0);
  const boxes: HTMLElement[] = [];
  const entry: { steps?: Chart; epochs?: Chart } = {};
  if (withSteps.length > 0) {
    const b = chartBox();
    boxes.push(b.box);
    entry.steps = new Chart(b.canvas, {
      type: 'line',
      data: { datasets: stepDatasets(stage) },
      options: stepOptions(),
    });
  }
  const ep = epochData(stage);
  if (ep.datasets.length > 0) {
    const b = chartBox('chart small');
    boxes.push(b.box);
    entry.epochs = new Chart(b.canvas, {
      type: 'line',
      data: { datasets: ep.datasets },
      options: ep.options,
      plugins: [valueLabels],
    });
  }
  const table = otherTable(stage);
  const tools = el(
    'span',
    { class: 'chart-tools' },
    ...(entry.steps
      ? [
          el(
            'button',
            { class: 'small', title: 'Back to the whole curve', onclick: () => entry.steps?.resetZoom() },
            'Reset zoom',
          ),
          el(
            'button',
            {
              class: 'small',
              title: 'Save this chart as a PNG',
              onclick: () => entry.steps && exportPng(stage, entry.steps),
            },
            'PNG',
          ),
        ]
      : []),
  );
  root().append(el('h2', {}, stage, tools), el('div', { class: 'grid2' }, ...boxes), table ?? '');
  for (const c of [entry.steps, entry.epochs]) c?.canvas.addEventListener('dblclick', () => c.resetZoom());
  charts.set(stage, entry);
}

// ---- steps: loss left, learning rate right, resume markers ---------------------------------------

function stepDatasets(stage: string) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const sets: any[] = [];
  runs.forEach((r, i) => {
    const s = seriesOf(r, stage);
    if (!s || s.steps.length === 0) return;
    const name = runs.length > 1 ? `${r.label}: ` : '';
    const t0 = firstTime(s.steps);
    const xs = s.steps.map((p) => stepX(p, controls.axis, t0));
    const at = (ys: number[]) =>
      ys.map((y, j) => ({ x: xs[j], y })).filter((p): p is { x: number; y: number } => p.x !== undefined);
    const loss = s.steps.map((p) => p[1]);
    const lc = seriesColor(i, 'loss');
    const rc = seriesColor(i, 'lr');
    const common = { pointRadius: 0, runId: r.id };
    if (controls.smoothing > 0)
      sets.push({
        ...common,
        label: `${name}loss (raw)`,
        data: at(loss),
        borderColor: faint(lc),
        backgroundColor: faint(lc),
        borderWidth: width(1),
        yAxisID: 'y',
        kind: 'raw',
      });
    sets.push({
      ...common,
      label: controls.smoothing > 0 ? `${name}loss (smoothed ${controls.smoothing.toFixed(2)})` : `${name}loss`,
      data: at(smoothEMA(loss, controls.smoothing)),
      borderColor: lc,
      backgroundColor: lc,
      borderWidth: width(1.5),
      yAxisID: 'y',
      kind: 'loss',
    });
    sets.push({
      ...common,
      label: `${name}lr`,
      data: at(s.steps.map((p) => p[2])),
      borderColor: rc,
      backgroundColor: rc,
      borderWidth: width(1),
      borderDash: [4, 3],
      yAxisID: 'lr',
      kind: 'lr',
    });
    if (s.markers.length && controls.axis === 'step') {
      sets.push({
        label: `${name}resumed`,
        type: 'scatter' as const,
        data: s.markers.map((m) => ({ x: m.x, y: lossAt(s, m.x) })),
        borderColor: cssVar('--vscode-charts-red', '#f14c4c'),
        backgroundColor: cssVar('--vscode-charts-red', '#f14c4c'),
        pointStyle: 'triangle',
        pointRadius: 7,
        yAxisID: 'y',
        markerLabels: s.markers.map((m) => m.label),
      });
    }
  });
  return sets;
}

function lossAt(s: TrainingSeries, x: number): number {
  let y = s.steps[0]?.[1] ?? 0;
  for (const p of s.steps) if (p[0] <= x) y = p[1];
  return y;
}

/** Zoom on x with the wheel or a drag, pan with shift+drag (chartjs-plugin-zoom). */
const ZOOM = {
  zoom: { wheel: { enabled: true }, drag: { enabled: true }, pinch: { enabled: true }, mode: 'x' as const },
  pan: { enabled: true, mode: 'x' as const, modifierKey: 'shift' as const },
};

function stepOptions() {
  return {
    parsing: false as const,
    normalized: true,
    interaction: { mode: 'nearest' as const, axis: 'x' as const, intersect: false },
    plugins: {
      zoom: ZOOM,
      tooltip: {
        callbacks: {
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          label: (item: any) =>
            item.dataset.markerLabels?.[item.dataIndex] ?? `${item.dataset.label}: ${fmt(item.parsed.y)}`,
        },
      },
    },
    scales: {
      x: {
        type: 'linear' as const,
        title: { display: true, text: controls.axis === 'time' ? 'wall time (minutes since the first step)' : 'step' },
      },
      y: {
        type: controls.log ? ('logarithmic' as const) : ('linear' as const),
        position: 'left' as const,
        title: { display: true, text: controls.log ? 'loss (log scale)' : 'loss' },
      },
      lr: {
        type: 'linear' as const,
        position: 'right' as const,
        title: { display: true, text: 'learning rate' },
        grid: { drawOnChartArea: false },
      },
    },
  };
}

// ---- epochs: losses left, scores in [0, 1] right -------------------------------------------------

function metricValues(stage: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const r of runs) {
    for (const e of seriesOf(r, stage)?.epochs ?? []) {
      for (const [k, v] of Object.entries(e.metrics)) out.set(k, [...(out.get(k) ?? []), v]);
    }
  }
  return out;
}

function epochData(stage: string) {
  const values = metricValues(stage);
  const axisOf = new Map([...values].map(([k, v]) => [k, metricAxis(k, v)]));
  const keys = [...values.keys()].filter((k) => axisOf.get(k) !== 'other');
  const summary = finalMetricsOnly(runs.map((r) => seriesOf(r, stage)));
  const datasets = [];
  for (const [i, r] of runs.entries()) {
    const s = seriesOf(r, stage);
    if (!s) continue;
    for (const [j, k] of keys.entries()) {
      const data = s.epochs.filter((e) => k in e.metrics).map((e) => ({ x: e.epoch, y: e.metrics[k] }));
      if (data.length === 0) continue;
      const c = runs.length > 1 ? seriesColor(i, 'loss') : palette()[j % 6];
      datasets.push({
        label: runs.length > 1 ? `${r.label}: ${k}` : k,
        data,
        borderColor: c,
        backgroundColor: c,
        borderWidth: width(1.5),
        borderDash: runs.length > 1 ? DASHES[j % DASHES.length] : [],
        pointStyle: STYLES[j % STYLES.length],
        pointRadius: data.length > 3 ? 3 : 5,
        yAxisID: axisOf.get(k) === 'loss' ? 'loss' : 'score',
      });
    }
  }
  const all = (axis: string) => [...values].filter(([k]) => axisOf.get(k) === axis).flatMap(([, v]) => v);
  const lossRange = axisRange(all('loss'), 'loss');
  const scoreRange = axisRange(all('score'), 'score')!;
  const xr = epochRange(runs.flatMap((r) => (seriesOf(r, stage)?.epochs ?? []).map((e) => e.epoch)));
  const options = {
    parsing: false as const,
    interaction: { mode: 'nearest' as const, intersect: false },
    layout: { padding: { top: 12, right: 40 } },
    plugins: { zoom: ZOOM },
    scales: {
      x: {
        type: 'linear' as const,
        min: xr.min,
        max: xr.max,
        title: { display: true, text: summary ? 'final metrics of the stage' : 'epoch' },
        // A tick at every whole epoch (the padded range starts half an epoch early).
        afterBuildTicks: (axis: { min: number; max: number; ticks: { value: number }[] }) => {
          const first = Math.ceil(axis.min);
          const n = Math.max(0, Math.floor(axis.max) - first + 1);
          if (n > 0 && n <= 50) axis.ticks = Array.from({ length: n }, (_, i) => ({ value: first + i }));
        },
        ticks: {
          stepSize: 1,
          callback: (v: number | string) => (summary || !Number.isInteger(Number(v)) ? '' : String(v)),
        },
      },
      loss: {
        type: 'linear' as const,
        position: 'left' as const,
        display: lossRange !== undefined,
        ...lossRange,
        title: { display: true, text: 'loss' },
      },
      score: {
        type: 'linear' as const,
        position: 'right' as const,
        ...scoreRange,
        title: { display: true, text: 'score' },
        grid: { drawOnChartArea: lossRange === undefined },
      },
    },
  };
  return { datasets, options };
}

/** Metrics that are neither losses nor scores (counts, sizes, seconds): a table, last value per run. */
function otherTable(stage: string): HTMLElement | undefined {
  const values = metricValues(stage);
  const keys = [...values].filter(([k, v]) => metricAxis(k, v) === 'other').map(([k]) => k);
  if (keys.length === 0) return undefined;
  const rows = runs
    .filter((r) => seriesOf(r, stage))
    .map((r) => {
      const eps = seriesOf(r, stage)!.epochs;
      return [r.label, ...keys.map((k) => fmt([...eps].reverse().find((e) => k in e.metrics)?.metrics[k]))];
    });
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, ...['run', ...keys].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))),
  );
}

// ---- messages --------------------------------------------------------------------------------------

function save(): void {
  vscode.setState({ runs: runs.map((r) => ({ id: r.id, label: r.label })), controls } satisfies State);
}

function isCurves(x: unknown): x is RunCurves {
  const r = x as RunCurves;
  if (typeof r !== 'object' || r === null) return false;
  return (
    typeof r.id === 'string' && typeof r.label === 'string' && Array.isArray(r.series) && Array.isArray(r.problems)
  );
}

function onSteps(m: Extract<TrainingMessage, { type: 'training-steps' }>): void {
  const r = runs.find((x) => x.id === m.run);
  if (!r || !Array.isArray(m.points)) return;
  const pts = m.points.filter((p) => Array.isArray(p) && p.length === 4 && p.every((v) => typeof v === 'number'));
  let s = seriesOf(r, String(m.stage));
  const fresh = !s || s.steps.length === 0;
  if (!s) r.series.push((s = { stage: String(m.stage), steps: [], epochs: [], markers: [] }));
  s.steps.push(...pts);
  const chart = charts.get(s.stage)?.steps;
  if (fresh || !chart) return render(); // a new stage or the first steps of one: lay out again
  // Smoothing depends on every earlier point: the stage's datasets are rebuilt (cheap next to drawing).
  chart.data.datasets = stepDatasets(s.stage);
  chart.update('none');
}

function onEpoch(m: Extract<TrainingMessage, { type: 'training-epoch' }>): void {
  const r = runs.find((x) => x.id === m.run);
  if (!r || typeof m.metrics !== 'object' || m.metrics === null) return;
  let s = seriesOf(r, String(m.stage));
  if (!s) r.series.push((s = { stage: String(m.stage), steps: [], epochs: [], markers: [] }));
  if (s.summary) s.epochs = [];
  s.summary = undefined;
  s.epochs.push({ epoch: Number(m.epoch), metrics: m.metrics });
  const chart = charts.get(s.stage)?.epochs;
  if (!chart || otherTable(s.stage)) return render();
  const ep = epochData(s.stage);
  chart.data.datasets = ep.datasets;
  chart.options.scales = ep.options.scales;
  chart.update('none');
}

export function startTraining(): void {
  themeCharts();
  // The theme changed (VS Code swaps the body's vscode-light / -dark / -high-contrast class).
  new MutationObserver(() => {
    themeCharts();
    render();
  }).observe(document.body, { attributes: true, attributeFilter: ['class'] });

  onMessage((raw) => {
    const m = raw as unknown as TrainingMessage;
    if (m.type === 'training-init') {
      if (!Array.isArray(m.runs)) return;
      title = String(m.title);
      runs = m.runs.filter(isCurves);
      render();
      save();
    } else if (m.type === 'training-run') {
      if (!isCurves(m.run)) return;
      const i = runs.findIndex((r) => r.id === m.run.id);
      if (i >= 0) runs[i] = m.run;
      else runs.push(m.run);
      render();
      save();
    } else if (m.type === 'training-steps') onSteps(m);
    else if (m.type === 'training-epoch') onEpoch(m);
  });

  const saved = vscode.getState() as State | undefined;
  const c = saved?.controls;
  if (c && typeof c.smoothing === 'number' && c.smoothing >= 0 && c.smoothing < 1)
    controls = { smoothing: c.smoothing, log: c.log === true, axis: c.axis === 'time' ? 'time' : 'step' };
  if (saved && Array.isArray(saved.runs)) {
    // Until the extension sends the curves, the saved run names (it re-reads their files).
    runs = saved.runs
      .filter((r) => typeof r?.id === 'string')
      .map((r) => ({ id: r.id, label: String(r.label), source: 'history', series: [], problems: [] }));
  }
  render();
  vscode.postMessage({ type: 'ready' });
}
