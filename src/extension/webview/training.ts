/// <reference lib="dom" />
// The training panel: per stage, loss and learning rate per step, and the epoch metrics, drawn as
// the engine's events stream in. The curves are kept in the webview state, so a reloaded window
// shows them again even when no run is going on.
import type { TrainingMessage, TrainingSeries } from '../panelData';
import { Chart, chartBox, el, onMessage, palette, root, setTitle, themeCharts, vscode } from './common';

interface State {
  title: string;
  series: TrainingSeries[];
}

let state: State = { title: 'Training', series: [] };
const charts = new Map<string, { steps: Chart; epochs: Chart }>();

function render(): void {
  charts.forEach((c) => {
    c.steps.destroy();
    c.epochs.destroy();
  });
  charts.clear();
  setTitle(state.title);
  if (state.series.length === 0) {
    root().replaceChildren(el('p', { class: 'empty' }, 'No training yet. Curves appear here while Pretrain, Fine-tune, Re-fine-tune or the pipeline run.'));
    return;
  }
  root().replaceChildren();
  for (const s of state.series) addStage(s);
}

function addStage(s: TrainingSeries): void {
  const [c0, c1, ...rest] = palette();
  const steps = chartBox();
  const epochs = chartBox('chart small');
  root().append(el('h2', {}, s.stage), el('div', { class: 'grid2' }, steps.box, epochs.box));
  const stepChart = new Chart(steps.canvas, {
    type: 'line',
    data: {
      datasets: [
        { label: 'loss', data: s.steps.map(([x, loss]) => ({ x, y: loss })), borderColor: c0, backgroundColor: c0, pointRadius: 0, borderWidth: 1.5, yAxisID: 'y' },
        { label: 'lr', data: s.steps.map(([x, , lr]) => ({ x, y: lr })), borderColor: c1, backgroundColor: c1, pointRadius: 0, borderWidth: 1, yAxisID: 'lr' },
      ],
    },
    options: {
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: { type: 'linear', title: { display: true, text: 'step' } },
        y: { type: 'linear', title: { display: true, text: 'loss' } },
        lr: { type: 'linear', position: 'right', title: { display: true, text: 'learning rate' }, grid: { drawOnChartArea: false } },
      },
    },
  });
  const keys = [...new Set(s.epochs.flatMap((e) => Object.keys(e.metrics)))];
  const epochChart = new Chart(epochs.canvas, {
    type: 'line',
    data: {
      datasets: keys.map((k, i) => epochDataset(k, s, [c0, c1, ...rest][i % 6])),
    },
    options: { scales: { x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { stepSize: 1 } } } },
  });
  charts.set(s.stage, { steps: stepChart, epochs: epochChart });
}

function epochDataset(key: string, s: TrainingSeries, color: string) {
  return {
    label: key,
    data: s.epochs.filter((e) => key in e.metrics).map((e) => ({ x: e.epoch, y: e.metrics[key] })),
    borderColor: color,
    backgroundColor: color,
    pointRadius: 3,
  };
}

function series(stage: string): TrainingSeries {
  let s = state.series.find((x) => x.stage === stage);
  if (!s) {
    s = { stage, steps: [], epochs: [] };
    state.series.push(s);
    if (state.series.length === 1) root().replaceChildren();
    addStage(s);
  }
  return s;
}

let saveTimer: number | undefined;
function save(): void {
  if (saveTimer !== undefined) return;
  saveTimer = window.setTimeout(() => {
    saveTimer = undefined;
    vscode.setState(state);
  }, 1000);
}

export function startTraining(): void {
  themeCharts();
  onMessage((raw) => {
    const m = raw as unknown as TrainingMessage;
    if (m.type === 'training-init') {
      // An empty init after a reload (no run in this window yet) keeps the restored curves.
      if (!Array.isArray(m.series)) return;
      if (m.series.length === 0 && state.series.length > 0) return;
      state = { title: String(m.title), series: m.series };
      render();
      save();
    } else if (m.type === 'training-steps' && Array.isArray(m.points)) {
      const s = series(String(m.stage));
      const pts = m.points.filter((p) => Array.isArray(p) && p.length === 3 && p.every((v) => typeof v === 'number'));
      s.steps.push(...pts);
      const c = charts.get(s.stage)!;
      c.steps.data.datasets[0].data.push(...pts.map(([x, y]) => ({ x, y })));
      c.steps.data.datasets[1].data.push(...pts.map(([x, , lr]) => ({ x, y: lr })));
      c.steps.update('none');
      save();
    } else if (m.type === 'training-epoch' && typeof m.metrics === 'object' && m.metrics !== null) {
      const s = series(String(m.stage));
      s.epochs.push({ epoch: Number(m.epoch), metrics: m.metrics });
      const c = charts.get(s.stage)!;
      const keys = [...new Set(s.epochs.flatMap((e) => Object.keys(e.metrics)))];
      c.epochs.data.datasets = keys.map((k, i) => epochDataset(k, s, palette()[i % 6]));
      c.epochs.update('none');
      save();
    }
  });

  const saved = vscode.getState() as State | undefined;
  if (saved && Array.isArray(saved.series)) state = saved;
  render();
  vscode.postMessage({ type: 'ready' });
}
