// Loading HF BERT folders made by PyTorch (test/fixtures/make_hf_bert.py, torch only): every form
// gives PyTorch's outputs within 1e-4, and hostile torch files are refused without running anything.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { maskBatch } from '../src/engine/data/masking';
import { Rng } from '../src/engine/data/rng';
import { loadCheckpoint } from '../src/engine/io/checkpoint';
import { readTorchBin } from '../src/engine/io/torch-bin';
import { classify, encode, toInputs } from '../src/engine/model/bert';
import { CLASSIFIER, POOLER } from '../src/engine/model/names';
import { disposeParams } from '../src/engine/model/params';
import { numLabels } from '../src/engine/model/config';
import { pruneVocabulary } from '../src/engine/prune/vocabulary';
import { userError } from './helpers/errors';

const PY = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'fixtures', 'make_hf_bert.py');
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch)
  console.log('io-hf-checkpoint: skipped, /usr/bin/python3 cannot import torch (apt install python3-torch)');

let dir = '';
beforeAll(async () => {
  if (!hasTorch) return;
  await initBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bert-pruner-hf-'));
  const r = spawnSync(PY, [SCRIPT, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make_hf_bert.py failed: ${r.stderr}`);
}, 120_000);
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Expected {
  ids: number[][];
  mask: number[][];
  output: number[][];
}

/** Our output for the folder's inputs: classifier logits, or the [CLS] hidden state. */
function ours(folder: string): {
  got: number[][];
  want: number[][];
  report: ReturnType<typeof loadCheckpoint>['report'];
} {
  const exp = JSON.parse(fs.readFileSync(path.join(folder, 'expected.json'), 'utf8')) as Expected;
  const ck = loadCheckpoint(folder);
  const B = exp.ids.length;
  const T = exp.ids[0].length;
  const inp = toInputs(Int32Array.from(exp.ids.flat()), Float32Array.from(exp.mask.flat()), B, T);
  const useClassifier = exp.output[0].length === 17;
  const out = tf.tidy(() => {
    if (useClassifier) return classify(ck.params, ck.config, inp);
    const h = encode(ck.params, ck.config, inp);
    return tf.gather(
      h,
      tf.tensor1d(
        [...Array(B).keys()].map((b) => b * T),
        'int32',
      ),
    );
  });
  const got = out.arraySync() as number[][];
  out.dispose();
  disposeParams(ck.params);
  return { got, want: exp.output, report: ck.report };
}

function maxDiff(a: number[][], b: number[][]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((row, i) => {
    expect(row.length).toBe(b[i].length);
    row.forEach((x, j) => (m = Math.max(m, Math.abs(x - b[i][j]))));
  });
  return m;
}

describe.skipIf(!hasTorch)('HF BERT folders made by PyTorch load with the same outputs', () => {
  const cases = [
    ['a_bin', 'pytorch_model.bin only, pruned_heads, 17-label classifier'],
    ['b_safetensors', 'model.safetensors'],
    ['c_gamma_beta', 'LayerNorm.gamma / beta names'],
    ['d_mlm', 'BertForMaskedLM without a classifier'],
    ['e_chinese', 'a BertModel (no bert. prefix), bert-base-chinese-like vocab, 3 token types'],
    ['f_fp16', 'fp16 weights in a .bin'],
    ['f_bf16', 'bf16 weights in safetensors'],
    ['g_sharded', 'a sharded BertForPreTraining (pytorch_model.bin.index.json)'],
  ];
  for (const [name, what] of cases) {
    it(`${name}: ${what}`, () => {
      const { got, want } = ours(path.join(dir, name));
      expect(maxDiff(got, want)).toBeLessThan(1e-4);
    });
  }

  it('reports heads it initialised and tensors it did not use', () => {
    const g = ours(path.join(dir, 'g_sharded')).report!;
    expect(g.unexpected).toEqual(['cls.seq_relationship.weight', 'cls.seq_relationship.bias']);
    expect(g.initialised).toEqual([]);
    const e = loadCheckpoint(path.join(dir, 'e_chinese'));
    expect(e.params.has(POOLER.weight)).toBe(true); // a BertModel's pooler is kept
    expect(e.report!.unexpected).toEqual([]);
    disposeParams(e.params);
    // A classifier config whose weights have no classifier: initialised and reported.
    const f = path.join(dir, 'd_mlm_cls');
    fs.cpSync(path.join(dir, 'd_mlm'), f, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(f, 'config.json'), 'utf8'));
    fs.writeFileSync(
      path.join(f, 'config.json'),
      JSON.stringify({ ...cfg, architectures: ['BertForSequenceClassification'] }),
    );
    const ck = loadCheckpoint(f);
    expect(ck.report!.initialised).toEqual([POOLER.weight, POOLER.bias, CLASSIFIER.weight, CLASSIFIER.bias]);
    disposeParams(ck.params);
  });

  it('special tokens by name: bert-base-chinese-like vocab, masking and vocabulary pruning', () => {
    const ck = loadCheckpoint(path.join(dir, 'e_chinese'));
    expect(ck.vocab.special).toEqual({ pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });
    const ids = Int32Array.from([101, 1, 104, 105, 102]);
    const b = { ids, mask: new Float32Array(5).fill(1), labels: null, B: 1, T: 5, rows: [0], tokens: 5 };
    for (let s = 0; s < 20; s++) {
      const m = maskBatch(b, ck.config.vocab_size, new Rng(s), 0.9, 1, ck.vocab.special);
      expect([...m.positions].every((p) => p >= 1 && p <= 3)).toBe(true); // never [CLS] / [SEP]
      for (const p of m.positions) expect([0, 100, 101, 102].includes(m.input[p])).toBe(false);
    }
    const counts = ck.vocab.tokens.map((_, i) => (i === 105 ? 3 : 0));
    const r = pruneVocabulary(ck.params, ck.config, ck.vocab, counts, { min_count: 1, prune_lm_head: 'auto' } as never);
    expect(r.vocab.tokens).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'c1']);
    expect(r.vocab.special).toEqual({ pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 });
    disposeParams(ck.params);
  });

  it('a classifier with 5 labels: its outputs follow id2label; a mismatch is one line', () => {
    const ck = loadCheckpoint(path.join(dir, 'h_5_labels'));
    expect(ck.params.get('classifier.weight')!.shape[0]).toBe(5);
    expect(numLabels(ck.config)).toBe(5);
    disposeParams(ck.params);
    const f = path.join(dir, 'h_5_wrong');
    fs.cpSync(path.join(dir, 'h_5_labels'), f, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(f, 'config.json'), 'utf8'));
    cfg.id2label = { 0: 'a', 1: 'b', 2: 'c' };
    fs.writeFileSync(path.join(f, 'config.json'), JSON.stringify(cfg));
    expect(userError(() => loadCheckpoint(f))).toMatch(
      /model\.safetensors: the classifier has 5 outputs, but config\.json's id2label names 3 labels$/,
    );
  });

  it('a non-BERT config: one line saying what is unsupported', () => {
    const f = path.join(dir, 'roberta');
    fs.cpSync(path.join(dir, 'b_safetensors'), f, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(f, 'config.json'), 'utf8'));
    for (const [over, msg] of [
      [{ model_type: 'roberta' }, /model_type "roberta" is not supported \(BERT only\)/],
      [{ architectures: ['RobertaForMaskedLM'] }, /architecture "RobertaForMaskedLM" is not supported/],
      [{ hidden_act: 'relu' }, /'hidden_act' must be "gelu"/],
      [{ position_embedding_type: 'relative_key' }, /relative position embeddings are not supported/],
    ] as const) {
      fs.writeFileSync(path.join(f, 'config.json'), JSON.stringify({ ...cfg, ...over }));
      expect(userError(() => loadCheckpoint(f))).toMatch(msg);
    }
  });
});

describe.skipIf(!hasTorch)('hostile torch files are refused without running anything', () => {
  const h = (f: string) => path.join(dir, 'hostile', f);
  it('GLOBAL os system: refused, and the command never ran', () => {
    expect(userError(() => readTorchBin(h('os_system.bin')))).toMatch(
      /os_system\.bin: refused GLOBAL os system \(only tensor state dicts are read\)$/,
    );
    expect(fs.existsSync(h('PWNED'))).toBe(false);
  });
  it('a REDUCE of anything but a tensor record: refused', () => {
    expect(userError(() => readTorchBin(h('reduce_other.bin')))).toMatch(/REDUCE of collections\.OrderedDict refused/);
    expect(userError(() => readTorchBin(h('eval_in_dict.bin')))).toMatch(/refused GLOBAL builtins eval/);
  });
  it('a zip entry claiming a huge size: refused before inflating', () => {
    expect(userError(() => readTorchBin(h('zip_bomb.bin')))).toMatch(/claims 1500000000 bytes .*zip bomb/);
  });
  it('the legacy non-zip torch.save format: one line', () => {
    const msg = userError(() => readTorchBin(h('legacy.bin')));
    expect(msg).toMatch(/legacy \(pre-1\.6, non-zip\) torch\.save format is not supported/);
    expect(msg.includes('\n')).toBe(false);
  });
});
