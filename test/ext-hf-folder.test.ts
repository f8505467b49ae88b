// The editor's "A Hugging Face folder…": the folder check, and the parameter tree of a folder with
// only pytorch_model.bin, from config.json alone (the shapes must be the engine loader's).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../src/engine/io/safetensors';
import type { BertConfig } from '../src/engine/model/config';
import { paramShapes } from '../src/engine/model/params';
import { checkBertFolder, configShapes, weightsFileOf, type ShapeConfig } from '../src/extension/hfFolder';
import { indexTree } from '../src/extension/paramTree';
import { readCheckpoint } from '../src/extension/runModel';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-hf-folder-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cfg = {
  architectures: ['BertForSequenceClassification'],
  model_type: 'bert',
  vocab_size: 30,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 24,
  max_position_embeddings: 12,
  type_vocab_size: 2,
  pruned_heads: { '1': [0, 2] },
  id2label: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [String(i), `L${i}`])),
};

function folder(name: string, files: Record<string, string>): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  for (const [f, c] of Object.entries(files)) fs.writeFileSync(path.join(d, f), c);
  return d;
}

describe('checkBertFolder', () => {
  const ok = { 'config.json': JSON.stringify(cfg), 'pytorch_model.bin': 'x', 'vocab.txt': '[PAD]\n' };
  it('accepts config.json with model_type bert, weights in a form the engine reads and vocab.txt', () => {
    expect(checkBertFolder(folder('ok', ok))).toBeNull();
    expect(weightsFileOf(['pytorch_model.bin', 'model.safetensors'])).toBe('model.safetensors');
    expect(weightsFileOf(['tf_model.h5'])).toBeUndefined();
  });
  it('refuses, in one line, what the engine could not load', () => {
    expect(checkBertFolder(folder('none', { 'vocab.txt': 'a\n' }))).toMatch(/no config\.json/);
    const roberta = { ...ok, 'config.json': JSON.stringify({ ...cfg, model_type: 'roberta' }) };
    expect(checkBertFolder(folder('roberta', roberta))).toMatch(/model_type "roberta"; only BERT models/);
    const tf = folder('tfonly', { 'config.json': JSON.stringify(cfg), 'tf_model.h5': 'x', 'vocab.txt': 'a\n' });
    expect(checkBertFolder(tf)).toMatch(/no weights/);
    expect(checkBertFolder(folder('badjson', { ...ok, 'config.json': '{' }))).toMatch(/not valid JSON/);
    expect(checkBertFolder(path.join(tmp, 'missing'))).toMatch(/ENOENT/);
  });
});

describe('configShapes', () => {
  it('gives the engine loader’s shapes (pruned heads, classifier, MLM head)', () => {
    const want = (c: object, has: { mlm: boolean; classifier: boolean }) =>
      Object.fromEntries(paramShapes(c as unknown as BertConfig, has));
    const got = (c: ShapeConfig) => Object.fromEntries(Object.entries(configShapes(c)).map(([n, t]) => [n, t.shape]));
    expect(got(cfg)).toEqual(want(cfg, { mlm: false, classifier: true }));
    const mlm = { ...cfg, architectures: ['BertForMaskedLM'], pruned_heads: {} };
    expect(got(mlm)).toEqual(want(mlm, { mlm: true, classifier: false }));
  });
  it('refuses a config that implies no model', () => {
    expect(() => configShapes({ ...cfg, hidden_size: 15 })).toThrow(/not a multiple/);
    expect(() => configShapes({ ...cfg, num_attention_heads: 0 })).toThrow(/positive integer/);
  });
});

describe('the parameter tree of a pytorch_model.bin-only folder', () => {
  it('comes from config.json, without reading the weights', () => {
    const d = folder('bin', {
      'config.json': JSON.stringify(cfg),
      'pytorch_model.bin': 'not a pickle',
      'vocab.txt': 'a\n',
    });
    const view = readCheckpoint(d, () => {
      throw new Error('the weights were read');
    });
    expect(view.error).toBeUndefined();
    const byId = indexTree(view.tree!);
    expect(byId.get('encoder/layer 1')!.layer).toEqual({ index: 1, headsKept: 2, headsTotal: 4, ffn: 24 });
    expect(view.tree!.children.map((c) => c.label)).toEqual(['embeddings', 'encoder', 'pooler', 'classifier']);
    // a folder with model.safetensors still reads its header
    expect(readCheckpoint(path.join(tmp, 'none'), readSafetensorsHeader).error).toMatch(/config\.json/);
  });
});
