// A Hub-style BERT folder (make_hf_bert.py's d_mlm, with a tokenizer_config.json that keeps case and
// a WordPiece tokenizer.json) on raw-text JSONL, through the CLI: corpus-vocab, finetune --from,
// prune (heads, FFN and vocabulary), refinetune with the teacher, evaluate, predict. The tokenizer
// settings travel with every checkpoint; the pruned checkpoints load in the plain-torch reference of
// make_hf_bert.py (--logits: config.json with pruned_heads and intermediate_size, model.safetensors)
// and give our logits within 1e-4 (transformers itself cannot be installed here). So does the
// refinetuned checkpoint with a layer and a quarter of its hidden size pruned (prune/apply.ts
// applyStructures), saved as a plain BertConfig (fewer, renumbered heads of the same size).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { tokenizerOf } from '../src/engine/data/rows';
import { readVocab } from '../src/engine/data/vocab';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/io/checkpoint';
import { classify, toInputs } from '../src/engine/model/bert';
import { disposeParams } from '../src/engine/model/params';
import { applyStructures } from '../src/engine/prune/apply';
import { bp, type Ran } from './helpers/cli';
import { bertTokenizerJson } from './helpers/tokenizer-json';

const PY = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'fixtures', 'make_hf_bert.py');
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.log('hf-roundtrip: skipped, /usr/bin/python3 cannot import torch (apt install python3-torch)');

let tmp = '';
let hf = '';
let run = '';
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const ok = (r: Ran) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r;
};
const json = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

/** Rows of words t5..t24 (of the fixture's t0..t34); label k when word t(5+k) is in the text. */
function rows(n: number, seed: number): string {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const words = Array.from({ length: 4 + Math.floor(rnd() * 6) }, () => 5 + Math.floor(rnd() * 20));
    const labels = [...new Set(words.filter((w) => w - 5 < 17).map((w) => w - 5))].sort((a, b) => a - b);
    out.push(JSON.stringify({ id: `r${i}`, text: words.map((w) => `t${w}`).join(' '), labels }));
  }
  return out.join('\n') + '\n';
}

beforeAll(async () => {
  if (!hasTorch) return;
  await initBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bert-pruner-hf-roundtrip-'));
  const r = spawnSync(PY, [SCRIPT, path.join(tmp, 'fx')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make_hf_bert.py failed: ${r.stderr}`);
  hf = path.join(tmp, 'bert-folder');
  fs.cpSync(path.join(tmp, 'fx', 'd_mlm'), hf, { recursive: true });
  fs.rmSync(path.join(hf, 'expected.json'));
  const vocab = fs.readFileSync(path.join(hf, 'vocab.txt'), 'utf8').trim().split('\n');
  fs.writeFileSync(path.join(hf, 'tokenizer.json'), JSON.stringify(bertTokenizerJson(vocab, { lowercase: false })));
  fs.writeFileSync(
    path.join(hf, 'tokenizer_config.json'),
    JSON.stringify({ do_lower_case: false, model_max_length: 32, tokenizer_class: 'BertTokenizer' }),
  );
  const data = path.join(tmp, 'data');
  fs.mkdirSync(data);
  fs.writeFileSync(path.join(data, 'train.jsonl'), rows(96, 1));
  fs.writeFileSync(path.join(data, 'test.jsonl'), rows(24, 2));
  fs.writeFileSync(
    path.join(tmp, 'cfg.bert-pruner.json'),
    JSON.stringify({ finetune: { epochs: 2, batch_size: 16 }, refinetune: { epochs: 1, batch_size: 16 } }),
  );
  fs.writeFileSync(
    path.join(tmp, 'even.prune.json'),
    JSON.stringify({
      transformer: {
        target_ffn_size: 12,
        target_num_of_heads: 2,
        pruning_method: 'iterative',
        n_iters: 1,
        head_even_masking: true,
        ffn_even_masking: true,
      },
      vocabulary: { min_count: 1, prune_lm_head: 'auto' },
    }),
  );
  run = path.join(tmp, 'run');
  ok(await bp(['corpus-vocab', '--data', data, '--run', run, '--preset', 'tiny']));
}, 180_000);

describe.skipIf(!hasTorch)('a HF BERT folder on raw-text JSONL, through the CLI', () => {
  it('finetune --from the folder tokenizes with its tokenizer and keeps its tokenizer settings', async () => {
    ok(await bp(['finetune', '--run', run, '--from', hf, '--config', path.join(tmp, 'cfg.bert-pruner.json')]));
    const ft = path.join(run, 'finetune');
    expect(fs.readFileSync(path.join(ft, 'vocab.txt'), 'utf8')).toBe(
      fs.readFileSync(path.join(hf, 'vocab.txt'), 'utf8'),
    );
    expect(json(path.join(ft, 'tokenizer_config.json'))).toMatchObject({
      tokenizer_class: 'BertTokenizer',
      do_lower_case: false,
      strip_accents: null,
      tokenize_chinese_chars: true,
      model_max_length: 32,
      cls_token: '[CLS]',
      sep_token: '[SEP]',
      pad_token: '[PAD]',
      unk_token: '[UNK]',
      mask_token: '[MASK]',
    });
    expect(json(path.join(ft, 'special_tokens_map.json'))).toMatchObject({ cls_token: '[CLS]', mask_token: '[MASK]' });
    expect(json(path.join(ft, 'tokenizer.json'))).toEqual(json(path.join(hf, 'tokenizer.json')));
  }, 300_000);

  it('prune (heads, FFN, vocabulary) rewrites the tokenizer files for the pruned vocabulary', async () => {
    const pruned = path.join(run, 'pruned');
    ok(
      await bp([
        'prune',
        '--model',
        path.join(run, 'finetune'),
        '--prune-config',
        path.join(tmp, 'even.prune.json'),
        '--out',
        pruned,
        '--run',
        run,
      ]),
    );
    const cfg = json(path.join(pruned, 'config.json'));
    expect(cfg.intermediate_size).toBe(12);
    expect(cfg.intermediate_sizes).toBeUndefined();
    expect(Object.values(cfg.pruned_heads).map((h) => (h as number[]).length)).toEqual([2, 2]);
    const v = readVocab(pruned);
    expect(v.tokens.length).toBe(25); // t25..t34 and t0..t4 never occur
    expect(v.tokens.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    const tj = json(path.join(pruned, 'tokenizer.json'));
    expect(tj.model.vocab).toEqual(Object.fromEntries(v.tokens.map((t, i) => [t, i])));
    expect(tj.post_processor.special_tokens['[SEP]'].ids).toEqual([3]);
    expect(json(path.join(pruned, 'tokenizer_config.json'))).toMatchObject({
      do_lower_case: false,
      sep_token: '[SEP]',
    });
    // The rewritten tokenizer.json is what the pruned checkpoint tokenizes with: T5 keeps its case (unknown)
    expect(tokenizerOf(v, pruned).tokenize('t5 T5 t30')).toEqual(['t5', '[UNK]', '[UNK]']);
  }, 300_000);

  it('refinetune with the teacher, evaluate and predict on the JSONL test file', async () => {
    ok(
      await bp([
        'refinetune',
        '--model',
        path.join(run, 'pruned'),
        '--run',
        run,
        '--teacher',
        path.join(run, 'finetune'),
        '--config',
        path.join(tmp, 'cfg.bert-pruner.json'),
      ]),
    );
    const rf = path.join(run, 'refinetune');
    expect(json(path.join(rf, 'tokenizer.json'))).toEqual(json(path.join(run, 'pruned', 'tokenizer.json')));
    const test = path.join(run, 'data', 'test.jsonl');
    const ev = ok(await bp(['evaluate', '--model', rf, '--data', test, '--json']));
    const m = JSON.parse(ev.stdout);
    expect(ev.stdout).toMatch(/"rows":\s*24/);
    expect(JSON.stringify(m)).toMatch(/"score":\s*0\.\d+/);
    const out = path.join(tmp, 'pred.jsonl');
    ok(await bp(['predict', '--model', rf, '--data', test, '--out', out]));
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(24);
    expect(JSON.parse(lines[0]).id).toBe('r0');
  }, 300_000);

  it('a checkpoint with fewer layers and a smaller hidden size saves as a plain BertConfig', async () => {
    const ck = loadCheckpoint(path.join(run, 'refinetune'));
    expect(ck.config).toMatchObject({ num_hidden_layers: 2, hidden_size: 16, num_attention_heads: 4 });
    const hidden = [...Array(16).keys()].map((j) => +(j % 4 !== 2)); // 12 dims: 3 heads of 4 fit
    const r = applyStructures(ck.params, ck.config, { layer: [0, 1], hidden }, false);
    expect(r.kept.layers).toEqual([1]);
    await saveCheckpoint(path.join(run, 'structures'), r.cfg, ck.params, ck.vocab);
    disposeParams(ck.params);
    const cfg = json(path.join(run, 'structures', 'config.json'));
    expect(cfg).toMatchObject({ num_hidden_layers: 1, hidden_size: 12, num_attention_heads: 3 });
    expect(cfg.pruned_heads).toEqual({ '0': [2] }); // the layer's 2 heads are 0 and 1 now
    expect(cfg.attention_head_size).toBeUndefined();
  });

  it.each(['pruned', 'refinetune', 'structures'])(
    'the %s checkpoint gives the plain-torch reference logits within 1e-4',
    (name) => {
      const dir = path.join(run, name);
      const ck = loadCheckpoint(dir);
      const tok = tokenizerOf(ck.vocab, dir);
      const ids = ['t5 t9 t12 t20', 't24 t6 t6 t17'].map((t) => [
        ck.vocab.special.cls,
        ...tok.idsOf(tok.tokenize(t)),
        ck.vocab.special.sep,
      ]);
      const T = ids[0].length;
      const inp = toInputs(Int32Array.from(ids.flat()), new Float32Array(ids.length * T).fill(1), ids.length, T);
      const ours = tf.tidy(() => classify(ck.params, ck.config, inp)).arraySync() as number[][];
      disposeParams(ck.params);
      const r = spawnSync(PY, [SCRIPT, '--logits', dir, JSON.stringify(ids)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`make_hf_bert.py --logits failed: ${r.stderr}`);
      const ref = JSON.parse(r.stdout) as number[][];
      expect(ref).toHaveLength(2);
      expect(ref[0]).toHaveLength(17);
      for (let b = 0; b < 2; b++)
        for (let j = 0; j < 17; j++) expect(Math.abs(ours[b][j] - ref[b][j])).toBeLessThan(1e-4);
    },
  );
});
