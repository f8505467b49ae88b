// The Runs tree's model: run.json -> runs and stages, checkpoint dir -> parameter tree, built from
// real files the engine's own writers produce (safetensors, the run manifest).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader, writeSafetensors } from '../src/engine/io/safetensors';
import { updateStage } from '../src/engine/io/run';
import { paramShapes } from '../src/engine/model/params';
import type { BertConfig } from '../src/engine/model/config';
import { buildParamTree, describeNode, formatCount, indexTree, type ParamNode } from '../src/extension/paramTree';
import {
  headlineMetric,
  listRuns,
  readCheckpoint,
  readRun,
  stageDescription,
  stageOfKey,
} from '../src/extension/runModel';
import { checkpointChoices } from '../src/extension/workflow';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-runs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A small pruned model: 2 layers of 4 heads (head size 4), layer 1 lost heads 0 and 2, FFN 16 and 8.
const cfg = {
  architectures: ['BertForSequenceClassification'],
  vocab_size: 30,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 16,
  intermediate_sizes: [16, 8],
  max_position_embeddings: 12,
  type_vocab_size: 2,
  pruned_heads: { '1': [0, 2] },
} as unknown as BertConfig;

function writeCheckpoint(dir: string, c: BertConfig, mlm: boolean, classifier: boolean): [string, number[]][] {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
  const shapes = paramShapes(c, { mlm, classifier });
  writeSafetensors(
    path.join(dir, 'model.safetensors'),
    shapes.map(([name, shape]) => ({ name, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })),
  );
  return shapes;
}

const sum = (shapes: [string, number[]][], pred: (n: string) => boolean) =>
  shapes.filter(([n]) => pred(n)).reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);

describe('parameter tree', () => {
  const dir = path.join(tmp, 'ckpt');
  const shapes = writeCheckpoint(dir, cfg, false, true);
  const view = readCheckpoint(dir, readSafetensorsHeader);
  const tree = view.tree as ParamNode;
  const byId = indexTree(tree);

  it('accounts for every tensor exactly once, in params and bytes', () => {
    expect(view.error).toBeUndefined();
    expect(tree.params).toBe(sum(shapes, () => true));
    expect(tree.bytes).toBe(4 * tree.params);
    const leaves = [...byId.values()].filter((n) => n.children.length === 0);
    expect(leaves).toHaveLength(shapes.length);
  });

  it('groups by module, with heads k/n and FFN size per layer from the shapes', () => {
    expect(tree.children.map((c) => c.label)).toEqual(['embeddings', 'encoder', 'pooler', 'classifier']);
    expect(byId.get('embeddings')!.params).toBe(sum(shapes, (n) => n.startsWith('bert.embeddings.')));
    const l0 = byId.get('encoder/layer 0')!;
    const l1 = byId.get('encoder/layer 1')!;
    expect(l0.layer).toEqual({ index: 0, headsKept: 4, headsTotal: 4, ffn: 16 });
    expect(l1.layer).toEqual({ index: 1, headsKept: 2, headsTotal: 4, ffn: 8 });
    expect(byId.get('encoder/layer 1/attention')!.detail).toBe('heads 2/4');
    expect(byId.get('encoder/layer 1/ffn')!.detail).toBe('size 8');
    expect(byId.get('encoder/layer 1/attention')!.params).toBe(
      sum(shapes, (n) => n.startsWith('bert.encoder.layer.1.attention.')),
    );
    expect(byId.get('encoder/layer 1/attention/self.query.weight')!.detail).toBe('[8, 16] F32');
    expect(describeNode(l1, tree.params)).toMatch(/^heads 2\/4 · FFN 8 · \d+(\.\d)?K? · \d+(\.\d)?%$/);
  });

  it('shows an MLM checkpoint with its cls head and no classifier', () => {
    const mlmDir = path.join(tmp, 'mlm');
    const s = writeCheckpoint(
      mlmDir,
      { ...cfg, pruned_heads: {}, intermediate_sizes: undefined, architectures: ['BertForMaskedLM'] } as BertConfig,
      true,
      false,
    );
    const t = readCheckpoint(mlmDir, readSafetensorsHeader).tree!;
    expect(t.children.map((c) => c.label)).toEqual(['embeddings', 'encoder', 'cls (MLM head)']);
    expect(t.params).toBe(sum(s, () => true));
  });

  it('puts unknown tensors under "other" and tolerates a header without a config hint', () => {
    const t = buildParamTree(
      { hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2 },
      {
        'bert.encoder.layer.0.attention.self.query.weight': { dtype: 'F16', shape: [2, 4], data_offsets: [0, 16] },
        'adapter.w': { dtype: 'F32', shape: [3], data_offsets: [16, 28] },
      },
    );
    expect(t.children.map((c) => c.label)).toEqual(['encoder', 'other']);
    expect(t.children[0].children[0].layer).toEqual({ index: 0, headsKept: 1, headsTotal: 2, ffn: 0 });
    expect(t.bytes).toBe(28);
  });

  it('reports a broken checkpoint as an error, not an exception', () => {
    const bad = path.join(tmp, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(
      path.join(bad, 'config.json'),
      '{"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 4}',
    );
    fs.writeFileSync(path.join(bad, 'model.safetensors'), 'nope');
    expect(readCheckpoint(bad, readSafetensorsHeader).error).toContain(path.join(bad, 'model.safetensors'));
    fs.writeFileSync(path.join(bad, 'config.json'), '{"hidden_size": 0}');
    expect(readCheckpoint(bad, readSafetensorsHeader).error).toMatch(/'hidden_size' must be a positive number/);
  });

  it('formats counts', () => {
    expect([formatCount(999), formatCount(1500), formatCount(2_345_678), formatCount(3e9)]).toEqual([
      '999',
      '1.5K',
      '2.35M',
      '3.00B',
    ]);
  });
});

describe('runs', () => {
  const runs = path.join(tmp, 'runs');
  const a = path.join(runs, 'a');
  updateStage(a, 'pretrain', {
    status: 'done',
    seconds: 75,
    metrics: { mlm_accuracy: 0.41234, loss: 3.2 },
    checkpoint: 'pretrain/best',
  });
  updateStage(a, 'prune', {
    status: 'done',
    seconds: 3,
    checkpoint: 'pruned',
    report: 'pruned/prune-report.json',
    metrics: { params: 123456 },
  });
  updateStage(a, 'finetune', { status: 'failed', seconds: 2, error: 'boom' });
  updateStage(a, 'corpus-vocab', { status: 'running' });
  fs.mkdirSync(path.join(runs, 'broken'));
  fs.writeFileSync(path.join(runs, 'broken', 'run.json'), '{"stages": ');
  fs.mkdirSync(path.join(runs, 'not-a-run'));

  it('lists runs with a run.json, tolerating broken manifests', () => {
    const list = listRuns(runs);
    expect(list.map((r) => r.name).sort()).toEqual(['a', 'broken']);
    expect(list.find((r) => r.name === 'broken')!.error).toMatch(/^run\.json: /);
    expect(listRuns(path.join(tmp, 'missing'))).toEqual([]);
  });

  it('orders stages as the pipeline does and resolves paths against the run dir', () => {
    const r = readRun(a);
    expect(r.stages.map((s) => s.key)).toEqual(['corpus-vocab', 'pretrain', 'finetune', 'prune']);
    const prune = r.stages.find((s) => s.key === 'prune')!;
    expect(prune.checkpoint).toBe(path.join(a, 'pruned'));
    expect(prune.report).toBe(path.join(a, 'pruned', 'prune-report.json'));
    // The pickers' list: finished checkpoints, newest stage first (workflow.ts).
    expect(checkpointChoices(r, 'any')).toEqual([
      { stage: 'prune', dir: path.join(a, 'pruned') },
      { stage: 'pretrain', dir: path.join(a, 'pretrain', 'best') },
    ]);
  });

  it('describes stages by their headline metric, duration or status', () => {
    const r = readRun(a);
    const d = Object.fromEntries(r.stages.map((s) => [s.key, stageDescription(s)]));
    expect(d).toEqual({
      'corpus-vocab': 'running',
      pretrain: 'mlm_accuracy 0.4123 · 1 min 15 s',
      finetune: 'failed · 2.0 s',
      prune: 'params 123.5K · 3.0 s',
    });
    expect(headlineMetric({ loss: 1, score: 0.5 })).toEqual(['score', 0.5]);
    expect(headlineMetric({})).toBeUndefined();
    expect(stageOfKey('evaluate-pruned')).toBe('evaluate');
  });
});

describe('runsSignature', () => {
  it('changes when a run appears or its run.json changes, not for other folders', async () => {
    const { runsSignature } = await import('../src/extension/runModel');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'runs-sig-'));
    const empty = runsSignature([root, path.join(root, 'missing')]);
    fs.mkdirSync(path.join(root, 'notes'));
    expect(runsSignature([root])).toBe(empty);
    fs.mkdirSync(path.join(root, 'r1'));
    fs.writeFileSync(path.join(root, 'r1', 'run.json'), '{}');
    const one = runsSignature([root]);
    expect(one).not.toBe(empty);
    fs.writeFileSync(path.join(root, 'r1', 'run.json'), '{"stages": {}}');
    expect(runsSignature([root])).not.toBe(one);
    fs.rmSync(root, { recursive: true, force: true });
  });
});
