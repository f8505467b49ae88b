// The panels' data and messages: what a webview may send, how engine events become curves, how a
// parameter tree becomes chart columns, how report files are normalised, and the page's CSP.
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../src/engine/protocol';
import { evaluationView, isEvaluationFile, mergeSteps, MAX_POINTS } from '../src/extension/panelData';
import { paramsColumn, paretoFront } from '../src/extension/panelData';
import { parseWebviewMessage, reportMessage, TrainingLog } from '../src/extension/panelData';
import type { TrainingMessage } from '../src/extension/panelData';
import { contentSecurityPolicy, makeNonce, panelHtml } from '../src/extension/panelHtml';
import { buildParamTree, type TensorInfo } from '../src/extension/paramTree';

describe('parseWebviewMessage', () => {
  const allowed = new Set(['/ws/runs/a/pruned/prune-report.json']);
  it('accepts the known messages', () => {
    expect(parseWebviewMessage({ type: 'ready' }, allowed)).toEqual({ type: 'ready' });
    expect(parseWebviewMessage({ type: 'compare' }, allowed)).toEqual({ type: 'compare' });
    expect(parseWebviewMessage({ type: 'open', path: '/ws/runs/a/pruned/prune-report.json' }, allowed)).toEqual({ type: 'open', path: '/ws/runs/a/pruned/prune-report.json' });
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

const step = (stage: 'pretrain' | 'finetune', s: number, loss = 1 / s): EngineEvent => ({
  type: 'step', stage, epoch: 1, epochs: 1, step: s, steps: 100, loss, lr: 0.001 * s, tokensPerSecond: 1, etaSeconds: 1,
});

describe('TrainingLog', () => {
  it('collects steps and epochs per stage and snapshots them', () => {
    const log = new TrainingLog();
    log.reset('Pipeline a');
    expect(log.apply(step('pretrain', 1))).toEqual({ type: 'training-steps', stage: 'pretrain', points: [[1, 1, 0.001]] });
    log.apply(step('pretrain', 2));
    expect(log.apply({ type: 'epoch', stage: 'pretrain', epoch: 1, epochs: 1, metrics: { mlm_accuracy: 0.3, bad: NaN } })).toEqual({
      type: 'training-epoch', stage: 'pretrain', epoch: 1, metrics: { mlm_accuracy: 0.3 },
    });
    log.apply(step('finetune', 1));
    expect(log.apply({ type: 'log', level: 'info', message: 'x' })).toBeUndefined();
    expect(log.apply(step('finetune', 2, NaN))).toBeUndefined();
    const snap = log.snapshot();
    expect(snap.type === 'training-init' && snap.title).toBe('Pipeline a');
    expect(snap.type === 'training-init' && snap.series.map((s) => [s.stage, s.steps.length, s.epochs.length])).toEqual([
      ['pretrain', 2, 1],
      ['finetune', 1, 0],
    ]);
  });

  it('keeps x increasing when a stage restarts (resume) and bounds the points', () => {
    const log = new TrainingLog();
    log.apply(step('finetune', 1));
    log.apply(step('finetune', 2));
    const m = log.apply(step('finetune', 1));
    expect(m).toEqual({ type: 'training-steps', stage: 'finetune', points: [[3, 1, 0.001]] });
    for (let i = 2; i < 3 * MAX_POINTS; i++) log.apply(step('finetune', i));
    const snap = log.snapshot();
    const xs = snap.type === 'training-init' ? snap.series[0].steps.map((p) => p[0]) : [];
    expect(xs.length).toBeLessThanOrEqual(MAX_POINTS);
    expect(xs.every((x, i) => i === 0 || x > xs[i - 1])).toBe(true);
    expect(xs[xs.length - 1]).toBe(3 * MAX_POINTS - 1 + 2);
  });

  it('merges consecutive step batches of one stage', () => {
    const ms: TrainingMessage[] = [
      { type: 'training-steps', stage: 'a', points: [[1, 1, 1]] },
      { type: 'training-steps', stage: 'a', points: [[2, 1, 1]] },
      { type: 'training-epoch', stage: 'a', epoch: 1, metrics: {} },
      { type: 'training-steps', stage: 'a', points: [[3, 1, 1]] },
      { type: 'training-steps', stage: 'b', points: [[1, 1, 1]] },
    ];
    const merged = mergeSteps(ms);
    expect(merged.map((m) => (m.type === 'training-steps' ? `${m.stage}:${m.points.length}` : m.type))).toEqual(['a:2', 'training-epoch', 'a:1', 'b:1']);
    expect(ms[0].type === 'training-steps' && ms[0].points.length).toBe(1); // inputs untouched
  });
});

describe('paramsColumn', () => {
  it('sums attention and FFN over layers and keeps the module order', () => {
    const t = (shape: number[], at: number): TensorInfo => ({ dtype: 'F32', shape, data_offsets: [at, at + 4 * shape.reduce((a, b) => a * b, 1)] });
    const tree = buildParamTree({ hidden_size: 4, num_hidden_layers: 2, num_attention_heads: 2 }, {
      'bert.embeddings.word_embeddings.weight': t([10, 4], 0),
      'bert.encoder.layer.0.attention.self.query.weight': t([4, 4], 0),
      'bert.encoder.layer.0.intermediate.dense.weight': t([8, 4], 0),
      'bert.encoder.layer.1.attention.self.query.weight': t([2, 4], 0),
      'bert.encoder.layer.1.intermediate.dense.weight': t([3, 4], 0),
      'classifier.weight': t([17, 4], 0),
    });
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
      { layer: 0, heads_kept: [0, 3], heads_total: 4, ffn_kept: 8, ffn_total: 16, head_importance: [0.9, 0.1, 0.2, 0.7] },
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
    expect(m.metrics).toEqual({ before: { score: 0.8 }, after_prune: { score: 0.6 }, after_refinetune: { score: 0.7 } });
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
    expect(reportMessage('t', 5, { rows: 1 }).problems).toEqual(['the pruning report is not a JSON object', 'sweep.json has no rows array']);
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
    const html = panelHtml({ title: 'A <b>', cspSource: 'vscode-resource:', scriptUri: 'vscode-resource:/x.js', styleUri: 'vscode-resource:/p.css', nonce, panel: 'report' });
    expect(html).toContain(`<script nonce="${nonce}" src="vscode-resource:/x.js"></script>`);
    expect(html).toContain('<title>A &lt;b&gt;</title>');
    expect(html.match(/<script/g)).toHaveLength(1);
  });
});
