/// <reference lib="dom" />
// Shared by the three panel pages (browser code, bundled by esbuild into dist/webview/*.js):
// the VS Code webview API, theme colours from --vscode-* variables, Chart.js set up for them, and
// small DOM helpers. Pages build their DOM with createElement/textContent only (no innerHTML), so
// nothing in a file a page shows can become markup.
import {
  BarController,
  BarElement,
  BubbleController,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip,
} from 'chart.js';

Chart.register(
  BarController,
  BarElement,
  BubbleController,
  CategoryScale,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip,
);

export { Chart };

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export const vscode = acquireVsCodeApi();

export function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** Series colours from the theme's chart palette. */
export function palette(): string[] {
  return [
    cssVar('--vscode-charts-blue', '#3794ff'),
    cssVar('--vscode-charts-orange', '#d18616'),
    cssVar('--vscode-charts-green', '#89d185'),
    cssVar('--vscode-charts-purple', '#b180d7'),
    cssVar('--vscode-charts-red', '#f14c4c'),
    cssVar('--vscode-charts-yellow', '#cca700'),
  ];
}

/** Chart.js defaults from the theme: text, grid lines, font. */
export function themeCharts(): void {
  Chart.defaults.color = cssVar('--vscode-foreground', '#ccc');
  Chart.defaults.borderColor = cssVar('--vscode-panel-border', 'rgba(128,128,128,0.35)');
  Chart.defaults.font.family = cssVar('--vscode-font-family', 'sans-serif');
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 14;
  Chart.defaults.plugins.legend.labels.boxHeight = 4;
}

type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; title?: string; onclick?: () => void } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.class) e.className = props.class;
  if (props.title) e.title = props.title;
  if (props.onclick) e.addEventListener('click', props.onclick);
  for (const c of children) if (c) e.append(c);
  return e;
}

/** A sized box with a canvas: Chart.js fills its parent when maintainAspectRatio is off. */
export function chartBox(cls = 'chart'): { box: HTMLDivElement; canvas: HTMLCanvasElement } {
  const canvas = el('canvas');
  return { box: el('div', { class: cls }, canvas), canvas };
}

export function table(
  head: string[],
  rows: (string | number | HTMLElement)[][],
  classes?: (string | undefined)[][],
): HTMLTableElement {
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))),
    el(
      'tbody',
      {},
      ...rows.map((r, i) =>
        el('tr', {}, ...r.map((c, j) => el('td', { class: classes?.[i]?.[j] }, typeof c === 'number' ? fmt(c) : c))),
      ),
    ),
  );
}

export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v))
    return Math.abs(v) >= 1e6
      ? `${(v / 1e6).toFixed(2)}M`
      : Math.abs(v) >= 1e4
        ? `${(v / 1e3).toFixed(1)}K`
        : String(v);
  return Math.abs(v) >= 1000 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toPrecision(4);
}

export function setTitle(text: string): void {
  document.getElementById('title')!.textContent = text;
}

export function showProblems(problems: string[] | undefined): void {
  const box = document.getElementById('problems')!;
  box.replaceChildren(...(problems ?? []).map((p) => el('div', {}, p)));
  box.hidden = !problems?.length;
}

export function root(): HTMLElement {
  return document.getElementById('root')!;
}

export function actions(): HTMLElement {
  return document.getElementById('actions')!;
}

/** Messages from the extension; a page acts only on the types it knows. */
export function onMessage(handler: (m: { type?: unknown } & Record<string, unknown>) => void): void {
  window.addEventListener('message', (e: MessageEvent) => {
    const m = e.data;
    if (typeof m === 'object' && m !== null && typeof m.type === 'string') handler(m);
  });
}
