// ONNX export checked with the real runtime (onnxruntime-node, a dev dependency): every kind of
// checkpoint (unpruned, uneven heads and FFN per layer with a layer of no heads, fewer layers and a
// smaller hidden size with heads of their own size, vocabulary-pruned, a Hub-style folder written
// here in TypeScript) gives the engine's logits within 1e-4 in fp32; the
// int8 export keeps every probability within 0.05 of the checkpoint's and >= 98% of its label
// decisions on the demo test file. The folder carries a tokenizer.json @huggingface/tokenizers
// loads and a labels.json. Where Debian's python3-onnx is installed, onnx.checker passes too.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { resolveSettings } from '../src/engine/config/settings';
import { encodeRows, makeBatches } from '../src/engine/data/encode';
import { readRows, tokenizerIn } from '../src/engine/data/rows';
import { readVocab } from '../src/engine/data/vocab';
import { runCommand } from '../src/engine/commands';
import { compareOnData, exportCheckpoint, onnxOf, classifierCheckpoint } from '../src/engine/export/export';
import { loadOrt, ORT_MISSING, ortLogits, ortSession, requireOrt } from '../src/engine/export/ort';
import type { OnnxBench } from '../src/engine/export/bench';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/io/checkpoint';
import { MARKER } from '../src/engine/io/ownership';
import { runPaths } from './helpers/run-folders';
import { writeSafetensors } from '../src/engine/io/safetensors';
import { ffnPerLayer, headsPerLayer, numLabels } from '../src/engine/model/config';
import { disposeParams } from '../src/engine/model/params';
import { batchLogits } from '../src/engine/model/predict';
import { toInputs } from '../src/engine/model/bert';
import { applyMasks, applyStructures } from '../src/engine/prune/apply';
import { pruneVocabulary } from '../src/engine/prune/vocabulary';
import type { StageContext } from '../src/engine/context';
import { finetuneClassifier as finetune } from '../src/engine/train/classifier';
import { bertTokenizerJson } from './helpers/tokenizer-json';
import { userError, userErrorAsync } from './helpers/errors';
import { SMALL_MODEL } from './helpers/pretrained';
import { writeDemo } from '../src/engine/data/demo';
import { corpusVocab } from '../src/engine/data/corpus';
import { openRun } from '../src/engine/io/run';
import { pretrain } from '../src/engine/train/pretrain';

const ort = loadOrt();
if (!ort) console.log('export-onnx: onnxruntime-node is not installed (npm ci); the runtime checks fail');
const PY = '/usr/bin/python3';
const hasOnnx = spawnSync(PY, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
if (!hasOnnx) console.log('export-onnx: onnx.checker skipped, python3 cannot import onnx (apt install python3-onnx)');

let root: string;
let run: string;
let ctx: StageContext;
const kinds: Record<string, string> = {};
const settings = resolveSettings('tiny', {
  model: SMALL_MODEL,
  finetune: { epochs: 12, lr: 3e-3, val_fraction: 0.2 },
});

beforeAll(async () => {
  const backend = await initBackend('wasm');
  ctx = { backend, emit: () => {} };
  // A model trained enough to be sure of most decisions (160 rows and 2 epochs leave every
  // probability next to its threshold, where any rounding flips decisions).
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-onnx-'));
  writeDemo(path.join(root, 'data'), { trainRows: 1200, testRows: 200, seed: 21 });
  run = path.join(root, 'run');
  openRun(run, {});
  await corpusVocab({ data: path.join(root, 'data'), run, seed: 1 }, ctx);
  const p = runPaths(run);
  await pretrain(run, resolveSettings('tiny', { model: SMALL_MODEL, pretrain: { epochs: 3 } }), ctx, {
    out: p.pretrain,
    last: p.pretrainLast,
  });
  await finetune(run, settings, ctx, {
    stage: 'finetune',
    from: p.pretrain,
    out: p.finetune,
    last: p.finetuneLast,
    settings: settings.finetune,
  });
  kinds.unpruned = p.finetune;

  // Uneven: layer 0 keeps head 1 and 20 FFN neurons, layer 1 no head and 7 neurons.
  const ck = loadCheckpoint(p.finetune);
  const L = ck.config.num_hidden_layers;
  const heads = headsPerLayer(ck.config).map((A, l) => [...Array(A).keys()].map((h) => (l === 0 ? +(h === 1) : 0)));
  const ffn = ffnPerLayer(ck.config).map((I, l) => [...Array(I).keys()].map((i) => +(i < (l === 0 ? 20 : 7))));
  const cfg = applyMasks(ck.params, ck.config, heads, ffn, false);
  kinds.uneven = path.join(run, 'uneven'); // in the run: export scores it on the run's test file
  await saveCheckpoint(kinds.uneven, cfg, ck.params, ck.vocab);
  expect(L).toBeGreaterThanOrEqual(2);
  expect(new Set(cfg.intermediate_sizes).size).toBeGreaterThan(1);
  disposeParams(ck.params);

  // Fewer layers and a smaller hidden size: 12 of 16 dims, so the two heads of 8 keep their size
  // in a config of ours (attention_head_size; not a plain BertConfig).
  const st = loadCheckpoint(p.finetune);
  const H = st.config.hidden_size;
  const layerMask = [...Array(L).keys()].map((l) => +(l < L - 1));
  const hiddenMask = [...Array(H).keys()].map((j) => +(j % 4 !== 1));
  const sc = applyStructures(st.params, st.config, { layer: layerMask, hidden: hiddenMask }, false).cfg;
  expect(sc).toMatchObject({ num_hidden_layers: L - 1, hidden_size: (3 * H) / 4, attention_head_size: H / 2 });
  kinds.structures = path.join(root, 'structures');
  await saveCheckpoint(kinds.structures, sc, st.params, st.vocab);
  disposeParams(st.params);

  // Vocabulary-pruned: tokens seen fewer than 3 times in the corpus go.
  const v = loadCheckpoint(p.finetune);
  const counts = v.vocab.tokens.map((_, i) => (i % 3 === 0 ? 0 : 5));
  const pv = pruneVocabulary(v.params, v.config, v.vocab, counts, { min_count: 3, prune_lm_head: 'auto' });
  expect(pv.after).toBeLessThan(pv.before);
  kinds.vocab = path.join(root, 'vocab-pruned');
  await saveCheckpoint(kinds.vocab, pv.cfg, v.params, pv.vocab);
  disposeParams(v.params);

  // A Hub-style folder, as transformers' save_pretrained writes one: no marker, no max_len, a
  // tokenizer.json, the position_ids buffer in the weights.
  const h = loadCheckpoint(p.finetune);
  const hub = path.join(root, 'hub');
  fs.mkdirSync(hub);
  const { max_len, ...hubCfg } = h.config;
  void max_len;
  fs.writeFileSync(path.join(hub, 'config.json'), JSON.stringify({ ...hubCfg, transformers_version: '4.44.0' }));
  const tensors = [...h.params].map(([name, t]) => ({ name, shape: t.shape, data: t.dataSync() as Float32Array }));
  const P = h.config.max_position_embeddings;
  tensors.push({
    name: 'bert.embeddings.position_ids',
    shape: [1, P],
    data: Float32Array.from({ length: P }, (_, i) => i),
  });
  writeSafetensors(path.join(hub, 'model.safetensors'), tensors);
  fs.writeFileSync(path.join(hub, 'vocab.txt'), h.vocab.tokens.join('\n') + '\n');
  fs.writeFileSync(path.join(hub, 'tokenizer.json'), JSON.stringify(bertTokenizerJson(h.vocab.tokens)));
  fs.writeFileSync(path.join(hub, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
  kinds.hub = hub;
  disposeParams(h.params);
}, 600_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const testFile = () => path.join(root, 'data', 'test.csv');

/** The engine's logits and onnxruntime's on the demo test rows, batch by batch. */
async function bothLogits(model: string, onnx: Uint8Array): Promise<{ ours: number[]; theirs: number[] }> {
  const ck = classifierCheckpoint(model);
  try {
    const { rows } = readRows(testFile(), { tokenizer: tokenizerIn(model), labelSet: undefined });
    const ex = encodeRows(rows, ck.vocab, 32, numLabels(ck.config));
    const session = await ortSession(ort!, onnx, 1);
    const ours: number[] = [];
    const theirs: number[] = [];
    for (const b of makeBatches(ex, { batchSize: 8 })) {
      ours.push(...(await batchLogits(ck.params, ck.config, () => toInputs(b.ids, b.mask, b.B, b.T, b.types))));
      theirs.push(...(await ortLogits(ort!, session, b.ids, b.mask, b.types ?? null, b.B, b.T)));
    }
    await session.release();
    return { ours, theirs };
  } finally {
    disposeParams(ck.params);
  }
}

describe('export --format onnx', () => {
  for (const kind of ['unpruned', 'uneven', 'structures', 'vocab', 'hub']) {
    it(`${kind}: onnxruntime gives our logits within 1e-4 (fp32), int8 within the bounds`, async () => {
      expect(ort, 'onnxruntime-node').not.toBeNull();
      const model = kinds[kind];
      const out = path.join(root, `onnx-${kind}`);
      const r = await exportCheckpoint(model, out, {});
      const bytes = new Uint8Array(fs.readFileSync(r.file));
      const { ours, theirs } = await bothLogits(model, bytes);
      expect(ours.length).toBeGreaterThan(100);
      const diff = Math.max(...ours.map((x, i) => Math.abs(x - theirs[i])));
      expect(diff, `${kind}: largest logit difference`).toBeLessThan(1e-4);

      // The files a server needs.
      for (const f of ['model.onnx', 'tokenizer.json', 'labels.json', 'vocab.txt', 'tokenizer_config.json', MARKER])
        expect(fs.existsSync(path.join(out, f)), f).toBe(true);
      expect(r.tokenizer.source).toBe(kind === 'hub' ? 'checkpoint' : 'built');
      const labels = JSON.parse(fs.readFileSync(path.join(out, 'labels.json'), 'utf8'));
      expect(labels.problem_type).toBe('multi_label_classification');
      expect(Object.keys(labels.id2label)).toHaveLength(17);
      expect(labels.thresholds).toHaveLength(17);
      const tok = new Tokenizer(JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8')), {});
      const vocab = readVocab(out);
      const word = vocab.tokens.find((t, i) => i > 4 && /^\w+$/.test(t))!;
      expect(tok.encode(word).ids).toEqual([vocab.special.cls, vocab.index.get(word), vocab.special.sep]);

      if (hasOnnx) {
        const c = spawnSync(
          PY,
          ['-c', 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', r.file],
          {
            encoding: 'utf8',
          },
        );
        expect(c.status, c.stderr).toBe(0);
      }

      // int8: a smaller file, the checkpoint's decisions on the demo test file.
      const ck = classifierCheckpoint(model);
      try {
        const q = onnxOf(ck, 'int8');
        expect(q.length).toBeLessThan(0.6 * bytes.length); // tiny: biases and LayerNorms weigh; 28% on the quick run
        const cmp = await compareOnData(ort!, q, ck, testFile());
        expect(cmp.max_prob_diff, `${kind} int8`).toBeLessThanOrEqual(0.05);
        expect(cmp.same_decisions, `${kind} int8`).toBeGreaterThanOrEqual(0.98);
        if (hasOnnx) {
          const f = path.join(root, `int8-${kind}.onnx`);
          fs.writeFileSync(f, q);
          const c = spawnSync(
            PY,
            ['-c', 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', f],
            {
              encoding: 'utf8',
            },
          );
          expect(c.status, c.stderr).toBe(0);
        }
      } finally {
        disposeParams(ck.params);
      }
    }, 300_000);
  }

  it('single-label: labels.json says argmax (no thresholds); the logits still agree', async () => {
    const single = path.join(root, 'single');
    fs.cpSync(kinds.unpruned, single, { recursive: true });
    const cfgFile = path.join(single, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, problem_type: 'single_label_classification' }));
    fs.rmSync(path.join(single, 'thresholds.json'), { force: true });
    const r = await exportCheckpoint(single, path.join(root, 'onnx-single'), {});
    const labels = JSON.parse(fs.readFileSync(path.join(root, 'onnx-single', 'labels.json'), 'utf8'));
    expect(labels).toMatchObject({ problem_type: 'single_label_classification', thresholds: null });
    expect(labels.decision).toMatch(/argmax of softmax/);
    const { ours, theirs } = await bothLogits(single, new Uint8Array(fs.readFileSync(r.file)));
    expect(Math.max(...ours.map((x, i) => Math.abs(x - theirs[i])))).toBeLessThan(1e-4);
  }, 120_000);

  it('the CLI writes it, re-exports onto its own folder, and refuses a folder it did not make', async () => {
    const out = path.join(root, 'cli-export');
    const r = await runCommand('export', ['--model', kinds.uneven, '--out', out, '--quantize', 'int8'], ctx);
    expect(r.text).toMatch(/model\.onnx \(int8/);
    expect(r.text).toMatch(/% same decisions/); // the run's test file, scored
    await runCommand('export', ['--model', kinds.uneven, '--out', out], ctx); // its own: no flag needed
    const mine = path.join(root, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'notes.txt'), 'keep me');
    const msg = await userErrorAsync(() => runCommand('export', ['--model', kinds.uneven, '--out', mine], ctx));
    expect(msg).toMatch(/not an ONNX export made by bert-pruner.*--force/);
    expect(fs.readFileSync(path.join(mine, 'notes.txt'), 'utf8')).toBe('keep me');
    const bad = await userErrorAsync(() =>
      runCommand('export', ['--model', kinds.uneven, '--out', out, '--quantize', 'int4'], ctx),
    );
    expect(bad).toMatch(/--quantize int4: not supported/);
  }, 300_000);

  it('bench --onnx races ours against ONNX Runtime fp32 and int8; without onnxruntime-node, one line', async () => {
    const r = await runCommand('bench', ['--onnx', '--model', kinds.uneven], ctx);
    const b = r.result as OnnxBench;
    expect(b.rows.map((x) => `${x.engine.split(' ')[0]} ${x.precision}`)).toEqual([
      'bert-pruner fp32',
      'ONNX fp32',
      'ONNX int8',
    ]);
    for (const x of b.rows) expect(x.ms_per_batch).toBeGreaterThan(0);
    expect([b.batch, b.seq]).toEqual([32, 64]); // as analyze times it
    expect(r.text).toMatch(/ONNX Runtime is faster|as fast as ONNX Runtime or faster/);
    const missing = () => {
      throw Object.assign(new Error("Cannot find module 'onnxruntime-node'"), { code: 'MODULE_NOT_FOUND' });
    };
    expect(userError(() => requireOrt(missing))).toBe(ORT_MISSING);
    const msg = await userErrorAsync(() => runCommand('bench', ['--onnx'], ctx));
    expect(msg).toMatch(/--model CKPT/);
  }, 120_000);

  it('a truncated checkpoint gives one line', async () => {
    const broken = path.join(root, 'broken');
    fs.cpSync(kinds.unpruned, broken, { recursive: true });
    const w = path.join(broken, 'model.safetensors');
    fs.truncateSync(w, Math.floor(fs.statSync(w).size / 2));
    const msg = await userErrorAsync(() =>
      runCommand('export', ['--model', broken, '--out', path.join(root, 'x')], ctx),
    );
    expect(msg).toContain(w);
    expect(msg.split('\n')).toHaveLength(1);
    expect(fs.existsSync(path.join(root, 'x'))).toBe(false);
  }, 60_000);
});
