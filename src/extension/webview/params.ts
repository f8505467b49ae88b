/// <reference lib="dom" />
// The parameters panel: one checkpoint's parameters by module, or two side by side (before /
// after pruning): totals, a bar chart per module, and per layer the heads kept, FFN size and
// parameters.
import { formatBytes } from '../figures';
import type { ParamsColumn } from '../panelData/params';
import {
  actions,
  Chart,
  chartBox,
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

function render(columns: ParamsColumn[]): void {
  charts.forEach((c) => c.destroy());
  charts = [];
  const colors = palette();
  setTitle(columns.length === 2 ? 'Parameters: before / after' : `Parameters: ${columns[0]?.label ?? ''}`);
  actions().replaceChildren(
    el(
      'button',
      { onclick: () => vscode.postMessage({ type: 'compare' }), title: 'Pick a second checkpoint to compare with' },
      columns.length === 2 ? 'Compare with another…' : 'Compare with…',
    ),
  );
  if (columns.length === 0) {
    root().replaceChildren(el('p', { class: 'empty' }, 'No readable checkpoint.'));
    return;
  }
  const first = columns[0];
  const summary = table(
    ['checkpoint', 'parameters', 'size', ...(columns.length === 2 ? ['vs first'] : [])],
    columns.map((c, i) => [
      c.configFile
        ? el(
            'a',
            { onclick: () => vscode.postMessage({ type: 'open', path: c.configFile }), title: 'Open config.json' },
            c.label,
          )
        : c.label,
      c.total,
      formatBytes(c.fileBytes ?? c.bytes),
      ...(columns.length === 2 ? [i === 0 ? '' : `${((100 * c.total) / first.total).toFixed(1)}%`] : []),
    ]),
  );

  // Modules: the union of both columns' groups, in the first column's order.
  const labels = [...new Set(columns.flatMap((c) => c.groups.map((g) => g.label)))];
  const modules = chartBox();
  const layers = chartBox();
  const maxLayers = Math.max(...columns.map((c) => c.layers.length));
  const layerTable = table(
    [
      'layer',
      ...columns.flatMap((c) =>
        columns.length === 2
          ? [`heads (${short(c.label)})`, `FFN (${short(c.label)})`]
          : ['heads', 'FFN', 'parameters'],
      ),
    ],
    [...Array(maxLayers).keys()].map((l) => [
      String(l),
      ...columns.flatMap((c) => {
        const x = c.layers.find((y) => y.index === l);
        const cells = [x ? `${x.headsKept}/${x.headsTotal}` : '–', x ? String(x.ffn) : '–'];
        return columns.length === 2 ? cells : [...cells, x ? fmt(x.attention + x.ffnParams) : '–'];
      }),
    ]),
  );
  root().replaceChildren(
    el('h2', {}, 'Totals'),
    summary,
    el('h2', {}, 'By module'),
    modules.box,
    el('h2', {}, 'By layer'),
    layers.box,
    layerTable,
  );

  charts.push(
    new Chart(modules.canvas, {
      type: 'bar',
      data: {
        labels,
        datasets: columns.map((c, i) => ({
          label: short(c.label),
          data: labels.map((l) => c.groups.find((g) => g.label === l)?.params ?? 0),
          backgroundColor: colors[i],
        })),
      },
      options: {
        plugins: {
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const y = ctx.parsed.y ?? 0;
                return `${ctx.dataset.label}: ${fmt(y)} (${((100 * y) / columns[ctx.datasetIndex].total).toFixed(1)}%)`;
              },
            },
          },
        },
        scales: { y: { title: { display: true, text: 'parameters' } } },
      },
    }),
    new Chart(layers.canvas, {
      type: 'bar',
      data: {
        labels: [...Array(maxLayers).keys()].map((l) => `layer ${l}`),
        datasets: columns.flatMap((c, i) => [
          {
            label: `attention (${short(c.label)})`,
            data: c.layers.map((x) => x.attention),
            backgroundColor: colors[2 * i],
            stack: `s${i}`,
          },
          {
            label: `FFN (${short(c.label)})`,
            data: c.layers.map((x) => x.ffnParams),
            backgroundColor: colors[2 * i + 1],
            stack: `s${i}`,
          },
        ]),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'parameters' } } } },
    }),
  );
}

function short(label: string): string {
  const parts = label.split(/[\\/]/);
  return parts.slice(-2).join('/');
}

export function startParams(): void {
  themeCharts();
  onMessage((m) => {
    if (m.type !== 'params' || !Array.isArray(m.columns)) return;
    const columns = m.columns as ParamsColumn[];
    showProblems(m.problems as string[] | undefined);
    render(columns);
    // What the serializer reopens after a reload.
    vscode.setState({ dirs: columns.map((c) => c.dir) });
  });
  vscode.postMessage({ type: 'ready' });
}
