// The Training Curves panel's data (pure, no 'vscode'): run histories and live engine events turned
// into per-stage series, and the messages that carry them to the page.
import type { EngineEvent } from '../../engine/protocol';
import { finite, isObject, num } from './json';

/**
 * One line of a run's history.jsonl (its format: src/engine/io/history.ts), or a live engine event
 * turned into one. Everything is checked: a line that is not a known, well-formed record is skipped.
 */
export interface HistoryRecord {
  type: 'stage-start' | 'stage-end' | 'step' | 'epoch' | 'resume';
  stage: string;
  key?: string; // run.json stage key of a stage-start/-end
  time?: number; // ms since 1970; absent when the line had none
  epoch?: number;
  step?: number;
  loss?: number;
  lr?: number;
  metrics?: Record<string, number>;
  status?: string;
  seconds?: number;
}

function historyRecord(x: unknown): HistoryRecord | undefined {
  if (!isObject(x) || typeof x.stage !== 'string' || x.stage === '') return undefined;
  const parsed = typeof x.time === 'string' ? Date.parse(x.time) : NaN;
  const time = Number.isFinite(parsed) ? parsed : undefined;
  const base = { stage: x.stage, ...(time !== undefined ? { time } : {}) };
  switch (x.type) {
    case 'step': {
      const step = num(x.step);
      const loss = num(x.loss);
      if (step === undefined || loss === undefined) return undefined;
      return { type: 'step', ...base, step, loss, lr: num(x.lr) ?? 0, epoch: num(x.epoch) };
    }
    case 'epoch': {
      const epoch = num(x.epoch);
      return epoch === undefined ? undefined : { type: 'epoch', ...base, epoch, metrics: finite(x.metrics) };
    }
    case 'resume': {
      const epoch = num(x.epoch);
      return epoch === undefined ? undefined : { type: 'resume', ...base, epoch };
    }
    case 'stage-start':
    case 'stage-end':
      return {
        type: x.type,
        ...base,
        key: typeof x.key === 'string' ? x.key : undefined,
        status: typeof x.status === 'string' ? x.status : undefined,
        seconds: num(x.seconds),
        metrics: isObject(x.metrics) ? finite(x.metrics) : undefined,
      };
    default:
      return undefined;
  }
}

/**
 * The records of a history.jsonl. Unparsable lines are skipped and counted, except a last line
 * without its newline: that one is being written (or was torn by a kill) and is ignored quietly.
 */
export function parseHistory(text: string): { records: HistoryRecord[]; skipped: number } {
  const lines = text.split('\n');
  const records: HistoryRecord[] = [];
  let skipped = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let r: HistoryRecord | undefined;
    try {
      r = historyRecord(JSON.parse(line));
    } catch {
      r = undefined;
    }
    if (r) records.push(r);
    else if (i < lines.length - 1) skipped++;
  });
  return { records, skipped };
}

/** A live engine event as a history record (time: when it arrived); undefined for the others. */
export function eventRecord(e: EngineEvent, time: number): HistoryRecord | undefined {
  switch (e.type) {
    case 'step':
      if (!Number.isFinite(e.loss)) return undefined;
      return { type: 'step', stage: e.stage, time, epoch: e.epoch, step: e.step, loss: e.loss, lr: e.lr };
    case 'epoch':
      return { type: 'epoch', stage: e.stage, time, epoch: e.epoch, metrics: finite(e.metrics) };
    case 'resume':
      return { type: 'resume', stage: e.stage, time, epoch: e.epoch };
    case 'stage-start':
      return { type: 'stage-start', stage: e.stage, time };
    case 'stage-end':
      return {
        type: 'stage-end',
        stage: e.stage,
        time,
        status: e.status,
        seconds: e.seconds,
        metrics: e.metrics && finite(e.metrics),
      };
    default:
      return undefined;
  }
}

/** The events of an engine run on a run, as they arrived: `since` is when the run was started. */
export interface LiveHistory {
  since: number;
  records: HistoryRecord[];
}

/** Most records a live history keeps; past that every other step is dropped. */
export const MAX_LIVE = 50_000;

export function pushLive(live: LiveHistory, r: HistoryRecord): void {
  live.records.push(r);
  if (live.records.length > MAX_LIVE) {
    let k = 0;
    live.records = live.records.filter((x) => x.type !== 'step' || k++ % 2 === 0 || x === r);
  }
}

/**
 * A run's history file merged with the live events of the engine run going on (or just ended):
 * the engine writes each line before it sends the event, so the file's lines from `since` on are
 * the live events again; those are taken from the live side, which also has what the file may lack.
 */
export function mergeHistory(file: HistoryRecord[], live?: LiveHistory): HistoryRecord[] {
  if (!live) return file;
  return [...file.filter((r) => r.time === undefined || r.time < live.since), ...live.records];
}

/** A step's point: [step, loss, lr, time (ms since 1970; 0 when the record had none)]. */
export type StepPoint = [number, number, number, number];

/** One stage's curves: per-step loss and lr, per-epoch metrics, where it was resumed. */
export interface TrainingSeries {
  stage: string;
  steps: StepPoint[]; // a stage run again continues the x axis
  epochs: { epoch: number; metrics: Record<string, number> }[];
  markers: { x: number; label: string }[]; // at step x, e.g. "resumed after epoch 2"
  summary?: boolean; // no epochs: the stage's final metrics (run.json or stage-end), one point
}

/**
 * Whether a stage's epoch chart shows only final metrics (no epochs) in every run that has the
 * stage. A posted series has no `summary` key when it is false: undefined does not survive
 * postMessage, so absent means epochs.
 */
export function finalMetricsOnly(series: (TrainingSeries | undefined)[]): boolean {
  return series.every((s) => !s || s.summary === true);
}

/** The curves of one run as the training panel shows them. */
export interface RunCurves {
  id: string; // the run directory
  label: string;
  source: 'history' | 'run.json' | 'live';
  series: TrainingSeries[];
  problems: string[];
}

/** Most points a series keeps; past that every other point is dropped (curves stay readable). */
export const MAX_POINTS = 4000;

interface StageState {
  s: TrainingSeries;
  offset: number; // added to the records' step numbers
  epochOffset: number; // added to their epoch numbers
  marks: EpochMark[]; // one per entry of s.epochs
}

interface EpochMark {
  raw: number; // the epoch number in the record
  x: number; // the last step's x when it ended
  offset: number;
  epochOffset: number;
}

/** What applying one record changed: points or an epoch to add, or 'reset' (send the whole run). */
export type SeriesChange =
  | { kind: 'steps'; stage: string; points: StepPoint[] }
  | { kind: 'epoch'; stage: string; epoch: number; metrics: Record<string, number> }
  | { kind: 'reset' };

/**
 * Builds a run's series from its records in order (history lines, then live events). A stage that
 * starts over (the pipeline ran it again, gradual pruning's recovery rounds) continues its x axis;
 * a resume cuts what the interrupted attempt did after the epoch it resumes from and marks the place.
 */
export class SeriesBuilder {
  private readonly map = new Map<string, StageState>();

  apply(r: HistoryRecord): SeriesChange | undefined {
    if (r.type === 'step') {
      if (r.step === undefined || r.loss === undefined || !Number.isFinite(r.loss)) return undefined;
      const st = this.get(r.stage);
      const last = st.s.steps[st.s.steps.length - 1];
      if (last && r.step + st.offset <= last[0]) st.offset = last[0];
      const p: StepPoint = [r.step + st.offset, r.loss, r.lr ?? 0, r.time ?? 0];
      st.s.steps.push(p);
      if (st.s.steps.length > MAX_POINTS) {
        st.s.steps = st.s.steps.filter((_, i, a) => i % 2 === 0 || i === a.length - 1);
      }
      return { kind: 'steps', stage: r.stage, points: [p] };
    }
    if (r.type === 'epoch' && r.epoch !== undefined) {
      const st = this.get(r.stage);
      if (st.s.summary) st.s.epochs = [];
      st.s.summary = undefined;
      const lastEpoch = st.s.epochs[st.s.epochs.length - 1]?.epoch;
      if (lastEpoch !== undefined && r.epoch + st.epochOffset <= lastEpoch) st.epochOffset = lastEpoch;
      const epoch = r.epoch + st.epochOffset;
      const metrics = r.metrics ?? {};
      st.s.epochs.push({ epoch, metrics });
      st.marks.push({ raw: r.epoch, x: lastX(st.s), offset: st.offset, epochOffset: st.epochOffset });
      return { kind: 'epoch', stage: r.stage, epoch, metrics };
    }
    if (r.type === 'resume' && r.epoch !== undefined) {
      const st = this.get(r.stage);
      let i = st.marks.length - 1;
      while (i >= 0 && st.marks[i].raw !== r.epoch) i--;
      if (i >= 0) {
        // Back to the end of that epoch: the interrupted attempt's later steps are done again.
        const m = st.marks[i];
        st.s.steps = st.s.steps.filter((p) => p[0] <= m.x);
        st.s.epochs = st.s.epochs.slice(0, i + 1);
        st.marks = st.marks.slice(0, i + 1);
        st.offset = m.offset;
        st.epochOffset = m.epochOffset;
      }
      st.s.markers.push({ x: lastX(st.s), label: `resumed after epoch ${r.epoch}` });
      return { kind: 'reset' };
    }
    if (r.type === 'stage-end' && r.status === 'done' && r.metrics && Object.keys(r.metrics).length > 0) {
      // A stage without epochs (evaluate, prune, corpus-vocab): its final metrics as one point.
      const name = r.key ?? r.stage;
      const st = this.map.get(name);
      if (st && !st.s.summary && st.s.epochs.length > 0) return undefined;
      const s = this.get(name).s;
      s.epochs = [{ epoch: 1, metrics: r.metrics }];
      s.summary = true;
      return { kind: 'reset' };
    }
    return undefined;
  }

  series(): TrainingSeries[] {
    return [...this.map.values()].map((st) => st.s);
  }

  /** Start from these series (run.json's final metrics). */
  seed(series: TrainingSeries[]): void {
    for (const s of series) {
      if (!this.map.has(s.stage)) this.map.set(s.stage, { s, offset: 0, epochOffset: 0, marks: [] });
    }
  }

  private get(stage: string) {
    let st = this.map.get(stage);
    if (!st) {
      st = { s: { stage, steps: [], epochs: [], markers: [] }, offset: 0, epochOffset: 0, marks: [] };
      this.map.set(stage, st);
    }
    return st;
  }
}

const lastX = (s: TrainingSeries) => s.steps[s.steps.length - 1]?.[0] ?? 0;

/** A run made before history.jsonl existed: each stage's final metrics from run.json, one point each. */
export function runJsonSeries(manifest: unknown): TrainingSeries[] {
  const stages = isObject(manifest) && isObject(manifest.stages) ? manifest.stages : {};
  const out: TrainingSeries[] = [];
  for (const [key, rec] of Object.entries(stages)) {
    const metrics = isObject(rec) ? finite(rec.metrics) : {};
    if (Object.keys(metrics).length === 0) continue;
    out.push({ stage: key, steps: [], epochs: [{ epoch: 1, metrics }], markers: [], summary: true });
  }
  return out;
}

/**
 * One run's curves from what is on disk and what arrived live: history.jsonl when there is one
 * (text undefined: there is none), else run.json's final metrics plus the live events. The builder
 * returned goes on taking the run's live events.
 */
export function runCurves(
  id: string,
  label: string,
  history: string | undefined,
  manifest: unknown,
  live?: LiveHistory,
): { curves: RunCurves; builder: SeriesBuilder } {
  const builder = new SeriesBuilder();
  const problems: string[] = [];
  let source: RunCurves['source'];
  if (history !== undefined) {
    const h = parseHistory(history);
    if (h.skipped) problems.push(`history.jsonl: ${h.skipped} unreadable line${h.skipped === 1 ? '' : 's'} skipped`);
    mergeHistory(h.records, live).forEach((r) => builder.apply(r));
    source = 'history';
  } else {
    // run.json's final metrics; a live stage's epochs replace its point.
    builder.seed(runJsonSeries(manifest));
    live?.records.forEach((r) => builder.apply(r));
    source = live?.records.length ? 'live' : 'run.json';
  }
  return { curves: { id, label, source, series: builder.series(), problems }, builder };
}

/** Which axis a metric goes on: losses left, scores (accuracy, F1, 1 - mlogloss, ...) in [0, 1] right. */
export type MetricAxis = 'loss' | 'score' | 'other';

export function metricAxis(key: string, values: number[]): MetricAxis {
  if (/loss|perplexity|ppl/i.test(key)) return 'loss';
  // Sizes, counts and times have units of their own: never on the score axis, even when in [0, 1].
  if (/(^|_)(mb|params|seconds|latency|flops|size|count|rows|tokens)|_ms$/i.test(key)) return 'other';
  if (/score|acc|f1|auc|precision|recall/i.test(key)) return 'score';
  return values.length > 0 && values.every((v) => v >= 0 && v <= 1) ? 'score' : 'other';
}

/**
 * A y range that shows the values readably: scores always span [0, 1] (more if a value is outside);
 * otherwise the values padded by a tenth of their spread, or, for one value (or equal values),
 * by a quarter of it, so a single point sits mid-axis with sensible ticks. Non-negative values keep
 * a non-negative axis.
 */
export function axisRange(values: number[], axis: MetricAxis): { min: number; max: number } | undefined {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return axis === 'score' ? { min: 0, max: 1 } : undefined;
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  const pad = hi > lo ? (hi - lo) * 0.1 : Math.abs(hi) * 0.25 || 1;
  if (axis === 'score') return { min: Math.min(0, lo - (lo < 0 ? pad : 0)), max: Math.max(1, hi + (hi > 1 ? pad : 0)) };
  return { min: lo >= 0 ? Math.max(0, lo - pad) : lo - pad, max: hi + pad };
}

/** The x range of an epoch chart: whole epochs with half an epoch either side (one epoch is readable). */
export function epochRange(epochs: number[]): { min: number; max: number } {
  const e = epochs.filter(Number.isFinite);
  if (e.length === 0) return { min: 0.5, max: 1.5 };
  return { min: Math.min(...e) - 0.5, max: Math.max(...e) + 0.5 };
}

export type TrainingMessage =
  | { type: 'training-init'; title: string; runs: RunCurves[] } // every run the panel shows
  | { type: 'training-run'; run: RunCurves } // one run added or redrawn
  | { type: 'training-steps'; run: string; stage: string; points: StepPoint[] }
  | { type: 'training-epoch'; run: string; stage: string; epoch: number; metrics: Record<string, number> };

/** The message for a builder's change on run `run`; undefined when the whole run must be re-sent. */
export function changeMessage(run: string, c: SeriesChange): TrainingMessage | undefined {
  if (c.kind === 'steps') return { type: 'training-steps', run, stage: c.stage, points: c.points };
  if (c.kind === 'epoch') return { type: 'training-epoch', run, stage: c.stage, epoch: c.epoch, metrics: c.metrics };
  return undefined;
}

/** Consecutive step messages of one run's stage become one message with all their points. */
export function mergeSteps(ms: TrainingMessage[]): TrainingMessage[] {
  const out: TrainingMessage[] = [];
  for (const m of ms) {
    const last = out[out.length - 1];
    if (
      m.type === 'training-steps' &&
      last?.type === 'training-steps' &&
      last.stage === m.stage &&
      last.run === m.run
    ) {
      last.points = [...last.points, ...m.points];
    } else out.push(m.type === 'training-steps' ? { ...m, points: [...m.points] } : m);
  }
  return out;
}

// ---- what the curves panel draws (TensorBoard's controls) --------------------------------------------

/**
 * TensorBoard's smoothing: an exponential moving average with weight `w` in [0, 1), debiased (the
 * average starts at 0, so each value is divided by 1 - w^n; the first points are not pulled to 0).
 * Non-finite values pass through and do not enter the average. w = 0 gives the values back.
 */
export function smoothEMA(ys: readonly number[], w: number): number[] {
  if (!(w > 0)) return [...ys];
  const weight = Math.min(w, 0.999);
  let last = 0;
  let n = 0;
  return ys.map((y) => {
    if (!Number.isFinite(y)) return y;
    last = last * weight + (1 - weight) * y;
    n++;
    return last / (1 - Math.pow(weight, n));
  });
}

/** The x of a step point on the chosen axis: its step, or the minutes since the stage's first timed step. */
export function stepX(p: StepPoint, axis: 'step' | 'time', t0: number): number | undefined {
  if (axis === 'step') return p[0];
  return p[3] > 0 && t0 > 0 ? (p[3] - t0) / 60_000 : undefined;
}

/** The first time of a stage's points (0 when none has one). */
export function firstTime(points: readonly StepPoint[]): number {
  return points.find((p) => p[3] > 0)?.[3] ?? 0;
}

/** A CSV field: quoted when it holds a comma, quote or line break. */
const csvField = (v: string | number) => {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/**
 * The series of the runs shown as CSV, one row per step: run, stage, step, wall time (ISO-8601,
 * empty when unknown), loss, the loss smoothed as drawn, lr. Then one row per epoch metric.
 */
export function curvesCsv(runs: readonly RunCurves[], smoothing: number): string {
  const lines = ['run,stage,kind,step,epoch,time,metric,value,smoothed'];
  for (const r of runs)
    for (const s of r.series) {
      const sm = smoothEMA(
        s.steps.map((p) => p[1]),
        smoothing,
      );
      s.steps.forEach((p, i) => {
        const time = p[3] > 0 ? new Date(p[3]).toISOString() : '';
        lines.push([r.label, s.stage, 'step', p[0], '', time, 'loss', p[1], sm[i]].map(csvField).join(','));
        lines.push([r.label, s.stage, 'step', p[0], '', time, 'lr', p[2], ''].map(csvField).join(','));
      });
      for (const e of s.epochs)
        for (const [k, v] of Object.entries(e.metrics))
          lines.push(
            [r.label, s.stage, s.summary ? 'final' : 'epoch', '', e.epoch, '', k, v, ''].map(csvField).join(','),
          );
    }
  return lines.join('\n') + '\n';
}
