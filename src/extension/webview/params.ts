/// <reference lib="dom" />
// The parameters panel: one checkpoint's parameters by module, or two side by side (before /
// after pruning): totals (with the layers and hidden size kept), a bar chart per module, and per
// layer the heads kept, FFN size and parameters (a layer that was another before pruning says so).
import { formatBytes, hiddenText, layersKeptText } from '../figures';
import { layerRows, type ParamsColumn, type ParamsLayer } from '../panelData/params';
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
    [
      'checkpoint',
      'parameters',
      'size',
      'layers',
      'hidden',
      'head size',
      ...(columns.length === 2 ? ['vs first'] : []),
    ],
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
      ...structureCells(c),
      ...(columns.length === 2 ? [i === 0 ? '' : `${((100 * c.total) / first.total).toFixed(1)}%`] : []),
    ]),
  );

  // Modules: the union of both columns' groups, in the first column's order.
  const labels = [...new Set(columns.flatMap((c) => c.groups.map((g) => g.label)))];
  const modules = chartBox();
  const layers = chartBox();
  const rows = layerRows(columns);
  const layerTable = table(
    [
      'layer',
      ...columns.flatMap((c) =>
        columns.length === 2
          ? [`heads (${short(c.label)})`, `FFN (${short(c.label)})`]
          : ['heads', 'FFN', 'parameters'],
      ),
    ],
    rows.map((row) => [
      row.label,
      ...row.cells.flatMap((x) => {
        const cells =
          x === 'removed'
            ? ['removed', 'removed']
            : [x ? `${x.headsKept}/${x.headsTotal}` : '–', x ? String(x.ffn) : '–'];
        if (columns.length === 2) return cells;
        return [...cells, x && x !== 'removed' ? fmt(x.attention + x.ffnParams) : '–'];
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
        labels: rows.map((r) => `layer ${r.label}`),
        datasets: columns.flatMap((c, i) => [
          {
            label: `attention (${short(c.label)})`,
            data: rows.map((r) => cellOf(r.cells[i], 'attention')),
            backgroundColor: colors[2 * i],
            stack: `s${i}`,
          },
          {
            label: `FFN (${short(c.label)})`,
            data: rows.map((r) => cellOf(r.cells[i], 'ffnParams')),
            backgroundColor: colors[2 * i + 1],
            stack: `s${i}`,
          },
        ]),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'parameters' } } } },
    }),
  );
}

/** The layers kept ("layers 3 of 4 kept (0, 2, 3)" after a deeper pruning), the hidden size and head size. */
function structureCells(c: ParamsColumn): string[] {
  const s = c.structure;
  if (!s) return ['–', '–', '–'];
  const from = s.prunedFrom;
  const layers =
    from && from.layersKept.length === s.layers && from.layersBefore !== s.layers
      ? layersKeptText(from.layersKept, from.layersBefore)
      : String(s.layers);
  const headSize = Number.isInteger(s.headSize) ? String(s.headSize) : s.headSize.toFixed(2);
  return [layers, hiddenText(s.hidden, from?.hiddenBefore).replace(/^hidden /, ''), headSize];
}

/** A layer's parameters in the chart (0 where the checkpoint has no such layer). */
function cellOf(x: ParamsLayer | 'removed' | undefined, k: 'attention' | 'ffnParams'): number {
  return x && x !== 'removed' ? x[k] : 0;
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
