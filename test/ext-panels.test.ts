// The panels' data and messages: what a webview may send, how engine events become curves, how a
// parameter tree becomes chart columns, how report files are normalised, and the page's CSP.
import { describe, expect, it } from 'vitest';
import { evaluationView, isEvaluationFile } from '../src/extension/panelData/evaluation';
import { parseWebviewMessage } from '../src/extension/panelData/messages';
import { paramsColumn } from '../src/extension/panelData/params';
import { paretoFront, reportMessage } from '../src/extension/panelData/report';
import {
  axisRange,
  curvesCsv,
  finalMetricsOnly,
  firstTime,
  smoothEMA,
  stepX,
  changeMessage,
  epochRange,
  MAX_LIVE,
  MAX_POINTS,
  mergeHistory,
  mergeSteps,
  metricAxis,
  parseHistory,
  pushLive,
  runCurves,
  SeriesBuilder,
  type HistoryRecord,
  type TrainingMessage,
} from '../src/extension/panelData/training';
import { contentSecurityPolicy, makeNonce, panelHtml } from '../src/extension/panelHtml';
import { buildParamTree, type TensorInfo } from '../src/extension/paramTree';

describe('parseWebviewMessage', () => {
  const allowed = new Set(['/ws/runs/a/pruned/prune-report.json']);
  it('takes an export with a plain file name only, a PNG only as a PNG data URL', () => {
    const csv = { type: 'export', format: 'csv', name: 'curves.csv', data: 'a,b\n' };
    expect(parseWebviewMessage(csv, allowed)).toEqual(csv);
    const png = { type: 'export', format: 'png', name: 'x.png', data: 'data:image/png;base64,AAAA' };
    expect(parseWebviewMessage(png, allowed)).toEqual(png);
    expect(parseWebviewMessage({ ...csv, name: '../../etc/passwd' }, allowed)).toBeUndefined();
    expect(parseWebviewMessage({ ...png, data: 'data:text/html,<b>' }, allowed)).toBeUndefined();
    expect(parseWebviewMessage({ ...csv, format: 'exe' }, allowed)).toBeUndefined();
    expect(parseWebviewMessage({ ...csv, extra: 1 }, allowed)).toBeUndefined();
  });
  it('accepts the known messages', () => {
    expect(parseWebviewMessage({ type: 'ready' }, allowed)).toEqual({ type: 'ready' });
    expect(parseWebviewMessage({ type: 'compare' }, allowed)).toEqual({ type: 'compare' });
    expect(parseWebviewMessage({ type: 'open', path: '/ws/runs/a/pruned/prune-report.json' }, allowed)).toEqual({
      type: 'open',
      path: '/ws/runs/a/pruned/prune-report.json',
    });
    expect(parseWebviewMessage({ type: 'add-run' }, allowed)).toEqual({ type: 'add-run' });
    expect(parseWebviewMessage({ type: 'remove-run', run: '/ws/runs/a' }, allowed, new Set(['/ws/runs/a']))).toEqual({
      type: 'remove-run',
      run: '/ws/runs/a',
    });
  });
  it('removes only runs the panel shows', () => {
    const runs = new Set(['/ws/runs/a']);
    for (const bad of [
      { type: 'remove-run', run: '/ws/runs/b' },
      { type: 'remove-run' },
      { type: 'remove-run', run: '/ws/runs/a', x: 1 },
      { type: 'add-run', run: '/x' },
    ]) {
      expect(parseWebviewMessage(bad, allowed, runs)).toBeUndefined();
    }
    expect(parseWebviewMessage({ type: 'remove-run', run: '/ws/runs/a' }, allowed)).toBeUndefined();
  });
  it('rejects anything else, including paths the panel was not given and extra fields', () => {
    for (const bad of [
      null,
      'ready',
      [],
      { type: 'open', path: '/etc/passwd' },
      { type: 'open', path: 3 },
      { type: 'ready', extra: 1 },
      { type: 'open', path: '/ws/runs/a/pruned/prune-report.json', command: 'x' },
      { type: 'run', stage: 'prune' },
    ]) {
      expect(parseWebviewMessage(bad, allowed)).toBeUndefined();
    }
  });
});

const step = (stage: string, s: number, loss = 1 / s, epoch = 1): HistoryRecord => ({
  type: 'step',
  stage,
  epoch,
  step: s,
  loss,
  lr: 0.001 * s,
});
const epochRec = (
  stage: string,
  epoch: number,
  metrics: Record<string, number> = { train_loss: 1 },
): HistoryRecord => ({ type: 'epoch', stage, epoch, metrics });
const xs = (b: SeriesBuilder, stage: string) =>
  b
    .series()
    .find((s) => s.stage === stage)!
    .steps.map((p) => p[0]);

describe('parseHistory', () => {
  it('reads the records, skips bad lines, and ignores a torn last line quietly', () => {
    const text = [
      '{"type":"stage-start","stage":"finetune","key":"finetune","time":"2024-01-01T00:00:00.000Z"}',
      '{"type":"step","stage":"finetune","epoch":1,"step":1,"steps":4,"loss":0.7,"lr":0.001,"tps":100,' +
        '"time":"2024-01-01T00:00:01.000Z"}',
      'not json',
      '{"type":"step","stage":"finetune","step":2}', // no loss
      '{"type":"epoch","stage":"finetune","epoch":1,"metrics":{"train_loss":0.6,"val_score":0.8,"bad":"x"}}',
      '{"type":"mystery","stage":"finetune"}',
      '',
      '{"type":"resume","stage":"finetune","epoch":1,"time":"2024-01-01T00:00:02.000Z"}',
      '{"type":"step","stage":"fine',
    ].join('\n');
    const { records, skipped } = parseHistory(text);
    expect(skipped).toBe(3);
    expect(records).toEqual([
      {
        type: 'stage-start',
        stage: 'finetune',
        key: 'finetune',
        time: Date.UTC(2024, 0, 1),
        status: undefined,
        seconds: undefined,
        metrics: undefined,
      },
      { type: 'step', stage: 'finetune', epoch: 1, step: 1, loss: 0.7, lr: 0.001, time: Date.UTC(2024, 0, 1, 0, 0, 1) },
      { type: 'epoch', stage: 'finetune', epoch: 1, metrics: { train_loss: 0.6, val_score: 0.8 } },
      { type: 'resume', stage: 'finetune', epoch: 1, time: Date.UTC(2024, 0, 1, 0, 0, 2) },
    ]);
    expect(parseHistory('{"type":"resume","stage":"a","epoch":1}\n{"type":"resume"').skipped).toBe(0);
  });
});

describe('mergeHistory', () => {
  it('takes the file before the live run started and the live events after', () => {
    const file = [
      { ...step('a', 1), time: 10 },
      { ...step('a', 2), time: 20 },
      { ...step('a', 3), time: 30 },
      epochRec('a', 1),
    ];
    const live = {
      since: 25,
      records: [
        { ...step('a', 3), time: 31 },
        { ...step('a', 4), time: 40 },
      ],
    };
    expect(mergeHistory(file, live).map((r) => [r.step ?? r.epoch, r.time])).toEqual([
      [1, 10],
      [2, 20],
      [1, undefined],
      [3, 31],
      [4, 40],
    ]);
    expect(mergeHistory(file)).toBe(file);
  });
  it('thins the steps of a long live history but keeps its epochs', () => {
    const live = { since: 0, records: [] as HistoryRecord[] };
    for (let i = 1; i <= MAX_LIVE + 10; i++) pushLive(live, i % 1000 === 0 ? epochRec('a', i / 1000) : step('a', i));
    expect(live.records.length).toBeLessThanOrEqual(MAX_LIVE);
    expect(live.records.filter((r) => r.type === 'epoch')).toHaveLength(Math.floor((MAX_LIVE + 10) / 1000));
    expect(live.records[live.records.length - 1].step).toBe(MAX_LIVE + 10);
  });
});

describe('SeriesBuilder', () => {
  it('collects steps and epochs per stage and reports each change', () => {
    const b = new SeriesBuilder();
    expect(b.apply(step('pretrain', 1))).toEqual({ kind: 'steps', stage: 'pretrain', points: [[1, 1, 0.001, 0]] });
    b.apply(step('pretrain', 2));
    expect(b.apply(epochRec('pretrain', 1, { mlm_accuracy: 0.3 }))).toEqual({
      kind: 'epoch',
      stage: 'pretrain',
      epoch: 1,
      metrics: { mlm_accuracy: 0.3 },
    });
    b.apply(step('finetune', 1));
    expect(b.apply(step('finetune', 2, NaN))).toBeUndefined();
    expect(b.apply({ type: 'stage-start', stage: 'finetune' })).toBeUndefined();
    expect(b.series().map((s) => [s.stage, s.steps.length, s.epochs.length])).toEqual([
      ['pretrain', 2, 1],
      ['finetune', 1, 0],
    ]);
    expect(changeMessage('/r', { kind: 'steps', stage: 'a', points: [[1, 2, 3, 0]] })).toEqual({
      type: 'training-steps',
      run: '/r',
      stage: 'a',
      points: [[1, 2, 3, 0]],
    });
    expect(changeMessage('/r', { kind: 'reset' })).toBeUndefined();
  });

  it('continues the x axis and epochs when a stage runs again, and bounds the points', () => {
    const b = new SeriesBuilder();
    b.apply(step('prune', 1));
    b.apply(step('prune', 2));
    b.apply(epochRec('prune', 1));
    expect(b.apply(step('prune', 1))).toEqual({ kind: 'steps', stage: 'prune', points: [[3, 1, 0.001, 0]] });
    expect(b.apply(epochRec('prune', 1))).toMatchObject({ epoch: 2 });
    for (let i = 2; i < 3 * MAX_POINTS; i++) b.apply(step('prune', i));
    const x = xs(b, 'prune');
    expect(x.length).toBeLessThanOrEqual(MAX_POINTS);
    expect(x.every((v, i) => i === 0 || v > x[i - 1])).toBe(true);
    expect(x[x.length - 1]).toBe(3 * MAX_POINTS - 1 + 2);
  });

  it('a resume replaces what the interrupted attempt did after that epoch and marks the place', () => {
    const b = new SeriesBuilder();
    for (let s = 1; s <= 4; s++) b.apply(step('finetune', s, 1, 1));
    b.apply(epochRec('finetune', 1));
    for (let s = 5; s <= 6; s++) b.apply(step('finetune', s, 9, 2)); // cancelled in epoch 2
    expect(b.apply({ type: 'resume', stage: 'finetune', epoch: 1 })).toEqual({ kind: 'reset' });
    for (let s = 5; s <= 8; s++) b.apply(step('finetune', s, 0.5, 2));
    b.apply(epochRec('finetune', 2));
    const s = b.series()[0];
    expect(s.steps.map((p) => [p[0], p[1]])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 0.5],
      [6, 0.5],
      [7, 0.5],
      [8, 0.5],
    ]);
    expect(s.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(s.markers).toEqual([{ x: 4, label: 'resumed after epoch 1' }]);
  });

  it("a stage's final metrics become one point when it has no epochs", () => {
    const b = new SeriesBuilder();
    b.apply(step('finetune', 1));
    b.apply(epochRec('finetune', 1));
    expect(
      b.apply({ type: 'stage-end', stage: 'finetune', key: 'finetune', status: 'done', metrics: { score: 0.9 } }),
    ).toBeUndefined();
    const evaluated: HistoryRecord = {
      type: 'stage-end',
      stage: 'evaluate',
      key: 'evaluate-pruned',
      status: 'done',
      metrics: { score: 0.8 },
    };
    expect(b.apply(evaluated)).toEqual({ kind: 'reset' });
    b.apply({ type: 'stage-end', stage: 'prune', key: 'prune', status: 'failed', metrics: { score: 0.1 } });
    expect(b.series().map((s) => [s.stage, s.summary ?? false, s.epochs])).toEqual([
      ['finetune', false, [{ epoch: 1, metrics: { train_loss: 1 } }]],
      ['evaluate-pruned', true, [{ epoch: 1, metrics: { score: 0.8 } }]],
    ]);
  });
});

describe('runCurves', () => {
  const manifest = {
    stages: {
      'corpus-vocab': { metrics: { vocab_size: 120 } },
      finetune: { metrics: { score: 0.9, loss: 0.3 } },
      prune: {},
    },
  };
  it("reads a run's history and merges the live events", () => {
    const history = [
      '{"type":"step","stage":"pretrain","step":1,"loss":6.5,"lr":0.001,"time":"1970-01-01T00:00:00.010Z"}',
      '{"type":"step","stage":"pretrain","step":2,"loss":6.4,"lr":0.001,"time":"1970-01-01T00:00:00.050Z"}',
      'broken',
      '',
    ].join('\n');
    const live = { since: 40, records: [{ ...step('pretrain', 2, 6.3), time: 45 }] };
    const { curves, builder } = runCurves('/w/runs/a', 'runs/a', history, manifest, live);
    expect(curves).toMatchObject({
      id: '/w/runs/a',
      label: 'runs/a',
      source: 'history',
      problems: ['history.jsonl: 1 unreadable line skipped'],
    });
    expect(curves.series[0].steps).toEqual([
      [1, 6.5, 0.001, 10],
      [2, 6.3, 0.002, 45],
    ]);
    expect(builder.apply(step('pretrain', 3))).toMatchObject({ points: [[3, 1 / 3, 0.003, 0]] });
  });
  it('shows what run.json has for a run without history, and live epochs replace its points', () => {
    const { curves, builder } = runCurves('/w/runs/old', 'old', undefined, manifest);
    expect(curves.source).toBe('run.json');
    expect(curves.series.map((s) => [s.stage, s.summary, s.epochs])).toEqual([
      ['corpus-vocab', true, [{ epoch: 1, metrics: { vocab_size: 120 } }]],
      ['finetune', true, [{ epoch: 1, metrics: { score: 0.9, loss: 0.3 } }]],
    ]);
    builder.apply(epochRec('finetune', 1, { train_loss: 0.5 }));
    expect(builder.series().find((s) => s.stage === 'finetune')).toMatchObject({
      summary: undefined,
      epochs: [{ epoch: 1, metrics: { train_loss: 0.5 } }],
    });
    expect(runCurves('/x', 'x', undefined, 'junk').curves.series).toEqual([]);
  });
});

describe('axes', () => {
  it('puts losses left, scores on [0, 1] right, and the rest in a table', () => {
    expect(metricAxis('train_loss', [6.5])).toBe('loss');
    expect(metricAxis('mlm_accuracy', [0.15])).toBe('score');
    expect(metricAxis('val_score', [-0.2, 0.5])).toBe('score');
    // Sizes and counts have units of their own, even when their values lie in [0, 1].
    expect(metricAxis('mb', [0.18])).toBe('other');
    expect(metricAxis('encoder_params', [0.5])).toBe('other');
    expect(metricAxis('micro_f1', [0.5])).toBe('score');
    expect(metricAxis('fraction', [0.5])).toBe('score');
    expect(metricAxis('vocab_size', [120])).toBe('other');
  });
  it('pads a single value so it sits mid-axis, keeps losses non-negative and scores on [0, 1]', () => {
    expect(axisRange([6.5], 'loss')).toEqual({ min: 4.875, max: 8.125 });
    const two = axisRange([0.2, 6.2], 'loss')!;
    expect(two.min).toBe(0);
    expect(two.max).toBeCloseTo(6.8);
    expect(axisRange([0], 'loss')).toEqual({ min: 0, max: 1 });
    expect(axisRange([], 'loss')).toBeUndefined();
    expect(axisRange([0.15], 'score')).toEqual({ min: 0, max: 1 });
    expect(axisRange([], 'score')).toEqual({ min: 0, max: 1 });
    const r = axisRange([-0.5, 0.9], 'score')!;
    expect(r.min).toBeLessThan(-0.5);
    expect(r.max).toBe(1);
    expect(epochRange([1])).toEqual({ min: 0.5, max: 1.5 });
    expect(epochRange([1, 2, 3])).toEqual({ min: 0.5, max: 3.5 });
    expect(epochRange([])).toEqual({ min: 0.5, max: 1.5 });
  });
});

describe('mergeSteps', () => {
  it("merges consecutive step batches of one run's stage", () => {
    const ms: TrainingMessage[] = [
      { type: 'training-steps', run: 'r', stage: 'a', points: [[1, 1, 1, 0]] },
      { type: 'training-steps', run: 'r', stage: 'a', points: [[2, 1, 1, 0]] },
      { type: 'training-epoch', run: 'r', stage: 'a', epoch: 1, metrics: {} },
      { type: 'training-steps', run: 'r', stage: 'a', points: [[3, 1, 1, 0]] },
      { type: 'training-steps', run: 'r', stage: 'b', points: [[1, 1, 1, 0]] },
      { type: 'training-steps', run: 'q', stage: 'b', points: [[1, 1, 1, 0]] },
    ];
    const merged = mergeSteps(ms);
    expect(merged.map((m) => (m.type === 'training-steps' ? `${m.run}${m.stage}:${m.points.length}` : m.type))).toEqual(
      ['ra:2', 'training-epoch', 'ra:1', 'rb:1', 'qb:1'],
    );
    expect(ms[0].type === 'training-steps' && ms[0].points.length).toBe(1); // inputs untouched
  });
});

describe('paramsColumn', () => {
  it('sums attention and FFN over layers and keeps the module order', () => {
    const t = (shape: number[], at: number): TensorInfo => ({
      dtype: 'F32',
      shape,
      data_offsets: [at, at + 4 * shape.reduce((a, b) => a * b, 1)],
    });
    const tree = buildParamTree(
      { hidden_size: 4, num_hidden_layers: 2, num_attention_heads: 2 },
      {
        'bert.embeddings.word_embeddings.weight': t([10, 4], 0),
        'bert.encoder.layer.0.attention.self.query.weight': t([4, 4], 0),
        'bert.encoder.layer.0.intermediate.dense.weight': t([8, 4], 0),
        'bert.encoder.layer.1.attention.self.query.weight': t([2, 4], 0),
        'bert.encoder.layer.1.intermediate.dense.weight': t([3, 4], 0),
        'classifier.weight': t([17, 4], 0),
      },
    );
    const c = paramsColumn('x', '/x', tree);
    expect(c.groups).toEqual([
      { label: 'embeddings', params: 40 },
      { label: 'attention', params: 24 },
      { label: 'FFN', params: 44 },
      { label: 'classifier', params: 68 },
    ]);
    expect(c.total).toBe(176);
    expect(c.layers).toEqual([
      { index: 0, headsKept: 2, headsTotal: 2, ffn: 8, attention: 16, ffnParams: 32 },
      { index: 1, headsKept: 1, headsTotal: 2, ffn: 3, attention: 8, ffnParams: 12 },
    ]);
  });
});

describe('reportMessage', () => {
  const report = {
    before: { params: 1000, mb: 4, flops: 5e6, latency_ms: 10 },
    after: { params: 600, mb: 2.4, flops: 3e6, latency_ms: 6.5 },
    layers: [
      {
        layer: 0,
        heads_kept: [0, 3],
        heads_total: 4,
        ffn_kept: 8,
        ffn_total: 16,
        head_importance: [0.9, 0.1, 0.2, 0.7],
      },
      { layer: 1, heads_kept: [1], heads_total: 4, ffn_total: 16, head_importance: [0.1, 0.5, 'x', 0.2] },
      'junk',
      { layer: 3 },
    ],
    metrics: { before: { score: 0.8 }, after_prune: { score: 0.6, note: 'x' }, after_refinetune: 0.7, junk: 'x' },
  };
  it('normalises a report and lists what it skipped', () => {
    const m = reportMessage('t', report, undefined, { file: '/r.json' });
    expect(m.after).toEqual({ params: 600, mb: 2.4, flops: 3e6, latency_ms: 6.5 });
    expect(m.layers).toEqual([
      { layer: 0, headsKept: [0, 3], headsTotal: 4, ffnKept: 8, ffnTotal: 16, headImportance: [0.9, 0.1, 0.2, 0.7] },
      { layer: 1, headsKept: [1], headsTotal: 4, ffnKept: 16, ffnTotal: 16, headImportance: [0.1, 0.5, 0.2] },
    ]);
    expect(m.metrics).toEqual({
      before: { score: 0.8 },
      after_prune: { score: 0.6 },
      after_refinetune: { score: 0.7 },
    });
    expect(m.problems).toEqual(['layers[2] is not an object', 'layers[3] lacks heads_total or ffn_total']);
    expect(m.file).toBe('/r.json');
  });
  it('reads sweep rows and finds the Pareto front', () => {
    const sweep = {
      rows: [
        { config: 'a', score: 0.8, params: 100, mb: 1, latency_ms: 5 },
        { config: 'b', score: 0.7, params: 60 },
        { config: 'c', score: 0.65, params: 80 }, // dominated by b
        { config: 'd', score: 0.5, params: 30 },
        { config: 'e', score: 'x', params: 1 },
      ],
    };
    const m = reportMessage('t', undefined, sweep);
    expect(m.sweep.map((r) => r.config)).toEqual(['a', 'b', 'c', 'd']);
    expect(m.problems).toEqual(['sweep row 4 lacks score or params']);
    expect(paretoFront(m.sweep).map((r) => r.config)).toEqual(['d', 'b', 'a']);
    expect(reportMessage('t', 5, { rows: 1 }).problems).toEqual([
      'the pruning report is not a JSON object',
      'sweep.json has no rows array',
    ]);
  });
});

describe('evaluation in the report panel', () => {
  // evaluate --json's shape (see src/engine/stages/evaluate.ts), three labels
  const evaluation = {
    model: 'runs/a/finetune',
    data: 'runs/a/data/test.csv',
    rows: 20,
    score: 0.9,
    mlogloss: 0.1,
    micro_f1: 0.6,
    micro_f1_at_thresholds: 0.7,
    macro_auc: 0.8,
    thresholds: { source: 'validation split of finetune', val_rows: 40, note: 'thresholds from thresholds.json' },
    per_label: [
      { label: 0, name: 'region_0', support: 5, logloss: 0.05, auc: 0.9, f1: 0.8, threshold: 0.4 },
      { label: 1, name: '<img src=x onerror=alert(1)>', support: 0, logloss: 0.3, auc: null, f1: null, threshold: 0.5 },
      { label: 2, name: 'region_2', support: 3, logloss: 0.3, auc: 0.7, f1: 0.5, threshold: 0.2 },
      { label: 'x', logloss: 1 },
      'junk',
    ],
  };
  it('lists the labels worst first (log-loss, then index), nulls as missing, names as plain strings', () => {
    const evaluationFile = '/ws/runs/a/finetune/eval-test.json';
    const m = reportMessage('Evaluation', undefined, undefined, { evaluationFile }, evaluation);
    const e = m.evaluation!;
    expect(e.labels.map((l) => l.label)).toEqual([1, 2, 0]);
    const name = '<img src=x onerror=alert(1)>';
    const want = { label: 1, name, support: 0, logloss: 0.3, auc: undefined, f1: undefined, threshold: 0.5 };
    expect(e.labels[0]).toEqual(want);
    expect(e.metrics).toContainEqual(['micro-F1 at 0.5', 0.6]);
    expect(e.metrics).toContainEqual(['micro-F1 at the stored thresholds', 0.7]);
    expect(e.thresholdsNote).toBe('thresholds from thresholds.json');
    expect(m.problems).toEqual(['per_label[3] lacks label or logloss', 'per_label[4] lacks label or logloss']);
    expect(m.evaluationFile).toBe('/ws/runs/a/finetune/eval-test.json');
  });
  it('survives malformed files and clips absurdly long names', () => {
    const problems: string[] = [];
    expect(evaluationView('x', problems)).toBeUndefined();
    expect(problems).toEqual(['the evaluation is not a JSON object']);
    const long = { per_label: [{ label: 0, logloss: 0.1, name: 'n'.repeat(5000) }], micro_f1_at_thresholds: null };
    const e = evaluationView(long, problems)!;
    expect(e.labels[0].name).toHaveLength(200);
    expect(e.metrics).toContainEqual(['micro-F1 at the stored thresholds', undefined]);
    expect(evaluationView({}, problems)!.labels).toEqual([]);
    expect(problems).toContain('the evaluation has no per_label list');
  });
  it('recognises evaluation files by name, and the page may open only the files it was given', () => {
    expect(isEvaluationFile('/ws/runs/a/finetune/eval-test.json')).toBe(true);
    expect(isEvaluationFile('C:\\ws\\evaluations\\eval-m-test.json')).toBe(true);
    expect(isEvaluationFile('/ws/runs/a/pruned/prune-report.json')).toBe(false);
    expect(isEvaluationFile('/ws/eval-dir/sweep.json')).toBe(false);
    const allowed = new Set(['/ws/runs/a/finetune/eval-test.json']);
    expect(parseWebviewMessage({ type: 'open', path: '/ws/runs/a/finetune/eval-test.json' }, allowed)).toBeDefined();
    expect(parseWebviewMessage({ type: 'open', path: '/ws/runs/a/finetune/eval-other.json' }, allowed)).toBeUndefined();
  });
});

describe('panel html', () => {
  it('allows only the nonce script and local styles, nothing remote or inline', () => {
    const nonce = makeNonce();
    expect(nonce).toMatch(/^[A-Za-z0-9]{16,}$/);
    expect(makeNonce()).not.toBe(nonce);
    const csp = contentSecurityPolicy('https://file+.vscode-resource.vscode-cdn.net', nonce);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src 'nonce-${nonce}'`);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:\/\/(?!file\+)/);
    const html = panelHtml({
      title: 'A <b>',
      cspSource: 'vscode-resource:',
      scriptUri: 'vscode-resource:/x.js',
      styleUri: 'vscode-resource:/p.css',
      nonce,
      panel: 'report',
    });
    expect(html).toContain(`<script nonce="${nonce}" src="vscode-resource:/x.js"></script>`);
    expect(html).toContain('<title>A &lt;b&gt;</title>');
    expect(html.match(/<script/g)).toHaveLength(1);
  });
});

describe('the epoch chart of a stage', () => {
  it('shows epochs when any run has them (a series posted without its summary key has epochs)', () => {
    const epochs = { stage: 'finetune', steps: [], epochs: [{ epoch: 1, metrics: {} }], markers: [] };
    const final = { ...epochs, summary: true };
    // What a posted series looks like: JSON drops `summary: undefined`.
    const posted = JSON.parse(JSON.stringify({ ...epochs, summary: undefined }));
    expect(finalMetricsOnly([posted])).toBe(false);
    expect(finalMetricsOnly([final, undefined])).toBe(true);
    expect(finalMetricsOnly([final, posted])).toBe(false);
  });
});

describe("the curves' controls: smoothing, time axis, CSV", () => {
  it('smooths like TensorBoard: a debiased EMA, the first point unchanged, 0 gives the values back', () => {
    expect(smoothEMA([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = smoothEMA([4, 0, 0, 0], 0.5);
    expect(s[0]).toBeCloseTo(4); // debiased: not pulled towards 0
    expect(s[1]).toBeCloseTo(1 / 0.75); // (0.5 * 2 + 0.5 * 0) / (1 - 0.5^2)
    // A constant stays constant at every weight; noise is damped.
    expect(smoothEMA([5, 5, 5, 5], 0.9).every((v) => Math.abs(v - 5) < 1e-9)).toBe(true);
    const noisy = Array.from({ length: 200 }, (_, i) => 1 + (i % 2 ? 0.5 : -0.5));
    const sm = smoothEMA(noisy, 0.9);
    expect(Math.abs(sm[199] - sm[198])).toBeLessThan(0.2);
    expect(smoothEMA([1, NaN, 3], 0.5)[1]).toBeNaN();
  });

  it('puts a step at its minutes since the first timed step on the time axis', () => {
    const pts: [number, number, number, number][] = [
      [1, 1, 0, 0],
      [2, 1, 0, 60_000],
      [3, 1, 0, 180_000],
    ];
    const t0 = firstTime(pts);
    expect(t0).toBe(60_000);
    expect(pts.map((p) => stepX(p, 'time', t0))).toEqual([undefined, 0, 2]);
    expect(pts.map((p) => stepX(p, 'step', t0))).toEqual([1, 2, 3]);
  });

  it('exports every step (loss, smoothed as drawn, lr) and every epoch metric as CSV rows', () => {
    const csv = curvesCsv(
      [
        {
          id: '/r',
          label: 'run, 1',
          source: 'history',
          problems: [],
          series: [
            {
              stage: 'finetune',
              steps: [
                [1, 2, 0.1, Date.UTC(2026, 0, 1)],
                [2, 1, 0.1, 0],
              ],
              epochs: [{ epoch: 1, metrics: { val_score: 0.5 } }],
              markers: [],
            },
          ],
        },
      ],
      0.5,
    );
    const rows = csv.trim().split('\n');
    expect(rows[0]).toBe('run,stage,kind,step,epoch,time,metric,value,smoothed');
    expect(rows).toHaveLength(1 + 2 * 2 + 1);
    expect(rows[1]).toBe('"run, 1",finetune,step,1,,2026-01-01T00:00:00.000Z,loss,2,2');
    expect(rows[3]).toBe(`"run, 1",finetune,step,2,,,loss,1,${(0.5 * 0.5 * 2 + 0.5 * 1) / 0.75}`);
    expect(rows[5]).toBe('"run, 1",finetune,epoch,,1,,val_score,0.5,');
  });
});
