// Decision thresholds end to end on a small pretrained run: fine-tuning stores the F1-best
// threshold of each label, chosen on its validation split with the weights it keeps, in
// thresholds.json; evaluate reports per-label metrics at them (and says when there are none);
// predict decides with them; pruning copies them along and says so.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { TEXTPRUNER_DEFAULTS } from '../src/engine/config/presets';
import { resolveSettings } from '../src/engine/config/settings';
import { readGaiicCsv } from '../src/engine/data/csv';
import { encodeRows } from '../src/engine/data/encode';
import { splitRows } from '../src/engine/data/split';
import { loadCheckpoint } from '../src/engine/io/checkpoint';
import { readThresholds, THRESHOLDS_FILE } from '../src/engine/io/thresholds';
import { disposeParams } from '../src/engine/model/params';
import { labelMatrix, predictProbs } from '../src/engine/model/predict';
import type { StageContext } from '../src/engine/context';
import { runPaths } from './helpers/run-folders';
import { evaluateCheckpoint, predictCheckpoint } from '../src/engine/train/evaluate';
import { finetuneClassifier as finetune } from '../src/engine/train/classifier';
import { pruneCheckpoint as pruneStage } from '../src/engine/prune/run';
import { formatEvaluation } from '../src/engine/format';
import { tuneThresholds } from '../src/engine/train/metrics';
import { bp, expectUserError } from './helpers/cli';
import { userError } from './helpers/errors';
import { pretrainedRun, SMALL_MODEL } from './helpers/pretrained';

let root: string;
let run: string;
let ctx: StageContext;
const settings = (valFraction: number) =>
  resolveSettings('tiny', { model: SMALL_MODEL, finetune: { epochs: 1, val_fraction: valFraction } });

beforeAll(async () => {
  const backend = await initBackend('wasm');
  ctx = { backend, emit: () => {} };
  ({ root, run } = await pretrainedRun('bp-thresholds-', 11, backend));
  const p = runPaths(run);
  const last = p.finetuneLast;
  await finetune(run, settings(0.25), ctx, {
    stage: 'finetune',
    from: p.pretrain,
    out: p.finetune,
    last,
    settings: settings(0.25).finetune,
  });
  const noval = path.join(run, 'noval');
  await finetune(run, settings(0), ctx, {
    stage: 'finetune',
    from: p.pretrain,
    out: noval,
    last: `${noval}-last`,
    settings: settings(0).finetune,
  });
}, 300_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('thresholds.json', () => {
  it('fine-tuning stores the F1-best thresholds of its validation split, for the weights it saved', async () => {
    const p = runPaths(run);
    const t = readThresholds(p.finetune)!;
    expect(t).not.toBeNull();
    expect(t.labels).toEqual([...Array(17).keys()].map((i) => `region_${i}`));
    expect(t.source).toBe('validation split of finetune');
    const s = settings(0.25);
    const val = splitRows(readGaiicCsv(p.train, { requireLabels: true }).rows, 0.25, s.seed).test;
    expect(t.val_rows).toBe(val.length);
    // Recomputed from the saved checkpoint on the same split: the same thresholds.
    const ck = loadCheckpoint(p.finetune);
    const ex = encodeRows(val, ck.vocab, Math.min(s.model.max_len, ck.config.max_position_embeddings));
    const want = tuneThresholds(await predictProbs(ck.params, ck.config, ex), labelMatrix(ex));
    disposeParams(ck.params);
    want.forEach((w, j) => expect(t.thresholds[j]).toBeCloseTo(w.threshold, 6));
    expect(t.thresholds.every((x) => x >= 0 && x <= 1)).toBe(true);
    // The epoch checkpoint (for --resume) has none: only the kept model is decided with.
    expect(fs.existsSync(path.join(p.finetuneLast, THRESHOLDS_FILE))).toBe(false);
  });

  it('without a validation split (val_fraction 0) no thresholds are stored', () => {
    expect(fs.existsSync(path.join(run, 'noval', 'config.json'))).toBe(true);
    expect(fs.existsSync(path.join(run, 'noval', THRESHOLDS_FILE))).toBe(false);
  });

  it('a malformed thresholds.json is a user error naming the file and the field', () => {
    const dir = path.join(root, 'bad');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, THRESHOLDS_FILE), JSON.stringify({ thresholds: [0.5, 2] }));
    expect(userError(() => readThresholds(dir, 17))).toMatch(
      /thresholds\.json: 'thresholds' must be a list of 17 numbers/,
    );
    fs.writeFileSync(path.join(dir, THRESHOLDS_FILE), JSON.stringify({ thresholds: [...Array(16).fill(0.5), 'x'] }));
    expect(userError(() => readThresholds(dir, 17))).toMatch(/thresholds\[16\] must be a number in \[0, 1\]/);
  });
});

describe('evaluate and predict', () => {
  it('evaluate: per-label support, log-loss, AUC, F1 at the stored thresholds; never NaN', async () => {
    const p = runPaths(run);
    const out = path.join(p.finetune, 'eval-test.json');
    const r = await evaluateCheckpoint(p.finetune, p.test, out);
    const e = r.evaluation;
    const t = readThresholds(p.finetune)!;
    expect(e.rows).toBe(20);
    expect(e.per_label).toHaveLength(17);
    expect(e.per_label.map((l) => l.threshold)).toEqual(t.thresholds);
    expect(e.per_label.map((l) => l.name)).toEqual(t.labels);
    const test = readGaiicCsv(p.test, { requireLabels: true }).rows;
    e.per_label.forEach((l, j) => {
      expect(l.label).toBe(j);
      expect(l.support).toBe(test.filter((row) => row.labels!.includes(j)).length);
      expect(l.logloss).toBeGreaterThan(0);
      if (l.support === 0 || l.support === 20) expect(l.auc).toBeNull();
      if (l.support === 0) expect(l.f1).toBeNull();
    });
    // mlogloss is the mean of the per-label log-losses
    expect(e.per_label.reduce((s, l) => s + l.logloss, 0) / 17).toBeCloseTo(e.mlogloss, 5);
    expect(e.thresholds.source).toBe('validation split of finetune');
    expect(e.thresholds.note).toMatch(/not tuned on this file/);
    expect(typeof e.micro_f1_at_thresholds).toBe('number');
    expect(r.metrics.micro_f1_at_thresholds).toBeCloseTo(e.micro_f1_at_thresholds!, 6);
    // the file written is the same JSON, and it holds no NaN
    const text = fs.readFileSync(out, 'utf8');
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(e)));
    expect(text).not.toContain('NaN');
    expect(r.report).toBe(path.resolve(out));
    // Evaluating does not touch the thresholds.
    expect(readThresholds(p.finetune)).toEqual(t);
    // The text output: the per-label table, worst log-loss first.
    const txt = formatEvaluation(e);
    expect(txt).toContain('micro-F1 at 0.5');
    expect(txt).toContain('micro-F1 at the stored thresholds');
    const worst = [...e.per_label].sort((a, b) => b.logloss - a.logloss || a.label - b.label)[0];
    const firstRow = txt.split('\n').find((l) => /^\| region_/.test(l))!;
    expect(firstRow).toMatch(new RegExp(`^\\| ${worst.name} +\\| +${worst.label} \\|`));
  });

  it('without thresholds: 0.5 for every label, and the output says so', async () => {
    const e = (await evaluateCheckpoint(path.join(run, 'noval'), runPaths(run).test)).evaluation;
    expect(e.thresholds.source).toBeNull();
    expect(e.thresholds.note).toMatch(/val_fraction 0.*0\.5 for every label/);
    expect(e.micro_f1_at_thresholds).toBeNull();
    expect(e.per_label.every((l) => l.threshold === 0.5)).toBe(true);
    expect(formatEvaluation(e)).not.toContain('stored thresholds');
  });

  it('predict: each line lists the labels with p >= the stored threshold (0.5 without)', async () => {
    const p = runPaths(run);
    const stored = readThresholds(p.finetune)!.thresholds;
    const cases = [
      [p.finetune, stored],
      [path.join(run, 'noval'), Array(17).fill(0.5)],
    ] as const;
    for (const [model, th] of cases) {
      const out = path.join(root, `pred-${path.basename(model)}.jsonl`);
      await predictCheckpoint(model, p.test, out);
      const lines = fs
        .readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(20);
      for (const l of lines) {
        // the names of the labels (GAIIC: region_N) with p >= the threshold
        expect(l.labels).toEqual([...Array(17).keys()].filter((j) => l.probs[j] >= th[j]).map((j) => `region_${j}`));
      }
    }
  });
});

describe('the CLI', () => {
  it('evaluate --json prints the evaluation; the text has the table; --out is recorded as the report', async () => {
    const p = runPaths(run);
    let r = await bp(['evaluate', '--model', p.finetune, '--data', p.test, '--json', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout);
    expect(Object.keys(e)).toEqual([
      'model',
      'data',
      'rows',
      'problem_type',
      'labels',
      'score',
      'mlogloss',
      'micro_f1',
      'micro_f1_at_thresholds',
      'macro_auc',
      'thresholds',
      'per_label',
    ]);
    expect(Object.keys(e.per_label[0])).toEqual(['label', 'name', 'support', 'logloss', 'auc', 'f1', 'threshold']);
    const out = path.join(root, 'cli-eval', 'eval-test.json');
    const args = ['--model', p.finetune, '--data', p.test, '--out', out, '--run', run, '--backend', 'wasm'];
    r = await bp(['evaluate', ...args]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/per label, worst log-loss first/);
    expect(r.stdout).toMatch(/\| label +\| +# \| support \| log-loss \| +AUC \| +F1 \| threshold \|/);
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).per_label).toEqual(e.per_label);
    const m = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(path.resolve(run, m.stages.evaluate.report)).toBe(out);
    const same = await bp(['evaluate', '--model', p.finetune, '--data', p.test, '--out', p.test, '--backend', 'wasm']);
    expectUserError(same, /--out .*same as --data/);
  }, 120_000);
});

describe('pruning', () => {
  it('copies the thresholds along, marked as copied', async () => {
    const p = runPaths(run);
    const transformer = { ...TEXTPRUNER_DEFAULTS, target_ffn_size: 16, target_num_of_heads: 1, n_iters: 1 };
    await pruneStage({ model: p.finetune, config: { transformer }, out: p.pruned, dataFile: p.train, seed: 1 }, ctx);
    const t = readThresholds(p.pruned)!;
    expect(t.thresholds).toEqual(readThresholds(p.finetune)!.thresholds);
    expect(t.source).toBe('validation split of finetune (of finetune, copied by prune)');
    // A model without thresholds stays without.
    const out = path.join(run, 'noval-pruned');
    await pruneStage({ model: path.join(run, 'noval'), config: { transformer }, out, dataFile: p.train, seed: 1 }, ctx);
    expect(fs.existsSync(path.join(run, 'noval-pruned', THRESHOLDS_FILE))).toBe(false);
  }, 120_000);
});
