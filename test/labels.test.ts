// Any labels: the label set is a property of the model (config.json's id2label / label2id and
// problem_type), from the checkpoint or the training data; single-label classifiers (softmax,
// cross-entropy, accuracy) next to multi-label ones (sigmoid, BCE, 1 - mlogloss).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { resolveSettings, type Settings } from '../src/engine/config/settings';
import { Rng } from '../src/engine/data/rng';
import { readVocab } from '../src/engine/data/vocab';
import { readConfig, saveCheckpoint } from '../src/engine/io/checkpoint';
import { readThresholds } from '../src/engine/io/thresholds';
import { GAIIC_LABELS, makeConfig, setClassification } from '../src/engine/model/config';
import { LabelReader, namesOfFile } from '../src/engine/data/labels';
import { allMetrics, perClassMetrics } from '../src/engine/train/metrics';
import { disposeParams, initParams } from '../src/engine/model/params';
import { readSafetensors } from '../src/engine/io/safetensors';
import { finetuneClassifier } from '../src/engine/train/classifier';
import { evaluateCheckpoint, predictCheckpoint } from '../src/engine/train/evaluate';
import { evaluationView } from '../src/extension/panelData/evaluation';
import { corpusVocab } from '../src/engine/data/corpus';
import { openRun } from '../src/engine/io/run';
import { userErrorAsync } from './helpers/errors';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-labels-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const MODEL = {
  hidden_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 32,
  max_len: 16,
  hidden_dropout_prob: 0,
  attention_probs_dropout_prob: 0,
  initializer_range: 0.05,
};
// 3 groups of 8 words; a row's class is the group most of its words come from
const WORDS = ['neg', 'neu', 'pos'].flatMap((g) => [...Array(8).keys()].map((i) => `${g}w${i}`));
let backend = 'wasm';
let base = '';

/** An untrained BertForMaskedLM with a word vocabulary (a "pretrained" checkpoint without labels). */
beforeAll(async () => {
  backend = await initBackend('wasm');
  const vdir = path.join(root, 'vocab');
  fs.mkdirSync(vdir);
  fs.writeFileSync(path.join(vdir, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...WORDS].join('\n'));
  const vocab = readVocab(vdir);
  const cfg = makeConfig({ ...MODEL, vocab_size: vocab.tokens.length }, vocab.tokens.length, 'mlm');
  const params = initParams(cfg, { mlm: true, seed: 3 });
  base = path.join(root, 'base');
  await saveCheckpoint(base, cfg, params, vocab);
  disposeParams(params);
});

/** Rows whose class is the word group with most words (5 of 8 from it). */
function rows(n: number, seed: number, labelsOf: (k: number, rng: Rng) => string[]): string {
  const rng = new Rng(seed);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.int(3);
    const words = [...Array(8).keys()].map((j) => {
      const g = j < 5 ? k : rng.int(3);
      return WORDS[g * 8 + rng.int(8)];
    });
    rng.shuffle(words);
    lines.push(JSON.stringify({ id: `r${i}`, text: words.join(' '), labels: labelsOf(k, rng) }));
  }
  return lines.join('\n') + '\n';
}

const CLASSES = ['pos', 'neg', 'neu']; // written in this order; the set is sorted: neg, neu, pos
const settings = (over: Record<string, unknown> = {}): Settings =>
  resolveSettings('tiny', {
    model: { ...MODEL, vocab_size: WORDS.length + 5 },
    finetune: { epochs: 12, batch_size: 16, lr: 5e-3, val_fraction: 0.2, warmup_ratio: 0, ...over },
  });

async function finetune(name: string, trainFile: string, s: Settings, from = base) {
  const logs: string[] = [];
  const out = path.join(root, name);
  const ctx = { backend, emit: (e: { type: string; message?: string }) => e.message && logs.push(e.message) };
  const r = await finetuneClassifier(root, s, ctx as never, {
    stage: 'finetune',
    from,
    out,
    last: `${out}-last`,
    trainFile,
    settings: s.finetune,
  });
  return { ...r, out, logs };
}

describe('labels from the training data', () => {
  it('single-label by name: softmax, accuracy above the majority class, predict writes the argmax name', async () => {
    const train = path.join(root, 'single-train.jsonl');
    const test = path.join(root, 'single-test.jsonl');
    fs.writeFileSync(
      train,
      rows(240, 1, (k) => [CLASSES[[2, 0, 1][k]]]),
    );
    fs.writeFileSync(
      test,
      rows(90, 2, (k) => [CLASSES[[2, 0, 1][k]]]),
    );
    const r = await finetune('single', train, settings());
    expect(r.logs).toContain(
      'labels: 3 (neg, neu, pos) from the training data, ' +
        'single-label (from the training data: every row has one label)',
    );
    const cfg = readConfig(r.out);
    expect(cfg.problem_type).toBe('single_label_classification');
    expect(cfg.id2label).toEqual({ 0: 'neg', 1: 'neu', 2: 'pos' });
    expect(cfg.label2id).toEqual({ neg: 0, neu: 1, pos: 2 });
    expect(readThresholds(r.out)).toBeNull(); // the argmax decides: no thresholds
    const e = (await evaluateCheckpoint(r.out, test)).evaluation;
    const majority = Math.max(...[0, 1, 2].map((k) => e.per_label[k].support)) / e.rows;
    expect(e.problem_type).toBe('single_label_classification');
    expect(e.score).toBe(e.accuracy);
    expect(e.accuracy!).toBeGreaterThan(majority + 0.15);
    expect(e.per_label.map((l) => l.name)).toEqual(['neg', 'neu', 'pos']);
    const pred = path.join(root, 'single-pred.jsonl');
    await predictCheckpoint(r.out, test, pred);
    const lines = fs
      .readFileSync(pred, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(90);
    for (const l of lines) {
      expect(l.probs).toHaveLength(3);
      expect(l.probs.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 4); // a softmax
      const best = l.probs.indexOf(Math.max(...l.probs));
      expect(l.labels).toEqual([['neg', 'neu', 'pos'][best]]);
    }
    // A name not in the label set in evaluation data: one line naming file:line.
    const bad = path.join(root, 'single-bad.jsonl');
    fs.writeFileSync(bad, '{"text": "new0", "labels": ["pos"]}\n{"text": "new1", "labels": ["maybe"]}\n');
    const msg = await userErrorAsync(() => evaluateCheckpoint(r.out, bad));
    expect(msg).toMatch(/single-bad\.jsonl:2: unknown label 'maybe' \(the model's 3 labels: neg, neu, pos/);
    expect(msg).not.toContain('\n');
  }, 120_000);

  it('multi-label with 5 named labels: a 5-output classifier, id2label in config.json, thresholds for 5', async () => {
    const names = ['e', 'd', 'c', 'b', 'a'];
    const train = path.join(root, 'multi-train.jsonl');
    fs.writeFileSync(
      train,
      rows(120, 3, (k, rng) =>
        rng.next() < 0.2 ? [] : [names[k], ...(rng.next() < 0.5 ? [names[3 + rng.int(2)]] : [])],
      ),
    );
    const r = await finetune('multi', train, settings({ epochs: 1 }));
    expect(r.logs.find((l) => l.startsWith('labels:'))).toMatch(
      /^labels: 5 \(a, b, c, d, e\) from the training data, multi-label \(from the training data: line \d+ has [02] labels\)$/,
    );
    const cfg = JSON.parse(fs.readFileSync(path.join(r.out, 'config.json'), 'utf8'));
    expect(cfg.id2label).toEqual({ 0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e' });
    expect(cfg.problem_type).toBe('multi_label_classification');
    expect(readSafetensors(path.join(r.out, 'model.safetensors')).get('classifier.weight')!.shape).toEqual([5, 32]);
    expect(readThresholds(r.out)!.labels).toEqual(['a', 'b', 'c', 'd', 'e']);
    const pred = path.join(root, 'multi-pred.jsonl');
    await predictCheckpoint(r.out, train, pred);
    const th = readThresholds(r.out)!.thresholds;
    for (const l of fs
      .readFileSync(pred, 'utf8')
      .trim()
      .split('\n')
      .map((x) => JSON.parse(x))) {
      expect(l.labels).toEqual(['a', 'b', 'c', 'd', 'e'].filter((_, j) => l.probs[j] >= th[j]));
    }
  }, 120_000);
});

describe('labels from the checkpoint', () => {
  it('a classifier saved without id2label (as HF does for 2 labels): its size, named LABEL_i', async () => {
    const vocab = readVocab(base);
    const cfg = makeConfig({ ...MODEL, vocab_size: vocab.tokens.length }, vocab.tokens.length, 'classification');
    const params = initParams(setClassification(cfg, { names: ['p', 'q'], problem: 'multi_label_classification' }), {
      mlm: false,
      classifier: true,
      seed: 4,
    });
    delete cfg.id2label;
    delete cfg.label2id;
    delete cfg.problem_type;
    const from = path.join(root, 'hf2');
    await saveCheckpoint(from, cfg, params, vocab);
    disposeParams(params);
    const train = path.join(root, 'hf2-train.jsonl');
    fs.writeFileSync(
      train,
      rows(40, 6, (k) => [String(k % 2)]),
    );
    const r = await finetune('hf2-ft', train, settings({ epochs: 1 }), from);
    expect(r.logs).toContain(
      'labels: 2 (LABEL_0, LABEL_1) from the checkpoint, ' +
        'single-label (from the training data: every row has one label)',
    );
    expect(readSafetensors(path.join(r.out, 'model.safetensors')).get('classifier.weight')!.shape).toEqual([2, 32]);
  }, 60_000);

  it("a checkpoint's id2label and single-label problem_type win over the data heuristic", async () => {
    const from = path.join(root, 'named');
    fs.cpSync(base, from, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(from, 'config.json'), 'utf8'));
    Object.assign(cfg, {
      id2label: { 0: 'y', 1: 'x' },
      label2id: { y: 0, x: 1 },
      problem_type: 'single_label_classification',
    });
    fs.writeFileSync(path.join(from, 'config.json'), JSON.stringify(cfg));
    // rows with zero or two labels: the heuristic alone would say multi-label
    const train = path.join(root, 'named-train.jsonl');
    fs.writeFileSync(
      train,
      rows(60, 4, (k) => (k === 0 ? [] : k === 1 ? ['x'] : ['x', 'y'])),
    );
    const r = await finetune('named-ft', train, settings({ epochs: 1 }), from);
    expect(r.logs).toContain("labels: 2 (y, x) from the checkpoint, single-label (from the checkpoint's problem_type)");
    const out = readConfig(r.out);
    expect(out.id2label).toEqual({ 0: 'y', 1: 'x' });
    expect(out.problem_type).toBe('single_label_classification');
    // the setting overrides the checkpoint; a name outside its labels is refused in training data too
    const r2 = await finetune(
      'named-ft2',
      train,
      settings({ epochs: 1, problem_type: 'multi_label_classification' }),
      from,
    );
    expect(readConfig(r2.out).problem_type).toBe('multi_label_classification');
    const bad = path.join(root, 'named-bad.jsonl');
    fs.writeFileSync(bad, '{"text": "a", "labels": ["x"]}\n{"text": "b", "labels": ["z"]}\n');
    await expect(finetune('named-ft3', bad, settings({ epochs: 1 }), from)).rejects.toThrow(
      /named-bad\.jsonl:2: unknown label 'z'/,
    );
  }, 120_000);
});

describe('single-label metrics and the label reader', () => {
  it('accuracy, macro-F1 over the classes seen, cross-entropy; per class precision / recall', () => {
    const probs = [0.7, 0.2, 0.1, 0.1, 0.3, 0.6, 0.3, 0.4, 0.3]; // argmax 0, 2, 1
    const labels = [1, 0, 0, 0, 0, 1, 1, 0, 0]; // classes 0, 2, 0
    const m = allMetrics(probs, labels, 3, true);
    expect(m.accuracy).toBeCloseTo(2 / 3, 10);
    expect(m.score).toBe(m.accuracy);
    expect(m.macro_f1).toBeCloseTo((2 / 3 + 0 + 1) / 3, 10);
    expect(m.mlogloss).toBeCloseTo(-(Math.log(0.7) + Math.log(0.6) + Math.log(0.3)) / 3, 10);
    const c = perClassMetrics(probs, labels, 3);
    expect(c.map((x) => [x.support, x.precision, x.recall])).toEqual([
      [2, 1, 0.5],
      [0, 0, null],
      [1, 1, 1],
    ]);
  });

  it('open reading: names sorted alphabetically, ids kept as ids (GAIIC set below 17, else LABEL_i)', () => {
    const r = new LabelReader();
    const rows = [r.parseAll(['pos', 'neg']), r.parseAll(['neu']), r.parseAll(['pos'])];
    expect(r.finish()).toEqual({ names: ['neg', 'neu', 'pos'], maxId: -1 });
    expect(rows).toEqual([[2, 0], [1], [2]]);
    const ids = new LabelReader();
    const idRows = [ids.parseAll([3, 'region_5']), ids.parseAll(['3'])];
    const f = ids.finish();
    expect(idRows).toEqual([[3, 5], [3]]);
    expect(namesOfFile(f)).toEqual(GAIIC_LABELS);
    const big = new LabelReader();
    big.parseAll([20]);
    expect(namesOfFile(big.finish())).toHaveLength(21);
    const closed = new LabelReader(['a', 'b']);
    expect(closed.parseAll(['b', 0])).toEqual([1, 0]);
    expect(closed.parse('c')).toMatch(/unknown label 'c' \(the model's 2 labels: a, b; or an id 0\.\.1\)/);
    expect(closed.parse(2)).toMatch(/label 2 is outside 0\.\.1/);
  });
});

describe('the report panel', () => {
  it('a single-label evaluation: accuracy and macro-F1, classes in label order with precision and recall', () => {
    const problems: string[] = [];
    const per = (label: number, logloss: number) => ({ label, name: `c${label}`, support: 2, logloss, f1: 0.5 });
    const e = evaluationView(
      {
        problem_type: 'single_label_classification',
        score: 0.8,
        accuracy: 0.8,
        macro_f1: 0.7,
        mlogloss: 0.4,
        thresholds: { note: 'argmax' },
        per_label: [
          { ...per(0, 0.1), precision: 1, recall: 0.5, threshold: null },
          { ...per(1, 0.9), precision: 0.5, recall: 1, threshold: null },
        ],
      },
      problems,
    )!;
    expect(problems).toEqual([]);
    expect(e.singleLabel).toBe(true);
    expect(e.metrics.map(([k]) => k)).toEqual(['score (accuracy)', 'macro-F1', 'cross-entropy', 'macro ROC-AUC']);
    expect(e.labels.map((l) => [l.label, l.precision, l.recall, l.threshold])).toEqual([
      [0, 1, 0.5, undefined],
      [1, 0.5, 1, undefined],
    ]);
  });
});

describe('corpus-vocab', () => {
  it("keeps label names in the run's copy of the data (ids stay ids)", async () => {
    const data = path.join(root, 'cv-data');
    fs.mkdirSync(data);
    fs.writeFileSync(
      path.join(data, 'train.jsonl'),
      '{"text": "a b", "labels": ["pos"]}\n{"text": "b", "labels": ["neg"]}\n',
    );
    fs.writeFileSync(path.join(data, 'test.jsonl'), '{"text": "a", "labels": [3]}\n');
    const run = path.join(root, 'cv-run');
    openRun(run, {});
    await corpusVocab({ data, run, seed: 1 }, { backend, emit: () => {} } as never);
    const read = (f: string) =>
      fs
        .readFileSync(path.join(run, 'data', f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).labels);
    expect(read('train.jsonl')).toEqual([['pos'], ['neg']]);
    expect(read('test.jsonl')).toEqual([[3]]);
  });
});
