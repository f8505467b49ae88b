// The prune stage end to end on a tiny checkpoint: iterative pruning with its schedule and masks,
// keep_shape vs sliced, vocabulary pruning, a second pruning, the report, and the sweep.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { getPreset } from '../src/engine/config/presets';
import type { PruneConfig, TransformerPruneConfig } from '../src/engine/config/settings';
import type { Row } from '../src/engine/data/csv';
import { encodeRows, makeBatches } from '../src/engine/data/encode';
import type { Vocab } from '../src/engine/data/vocab';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/io/checkpoint';
import { encode, mlmLogits } from '../src/engine/model/bert';
import { ffnPerLayer, headsPerLayer, keptHeads } from '../src/engine/model/config';
import { disposeParams } from '../src/engine/model/params';
import { predictLogits } from '../src/engine/model/predict';
import type { EngineEvent } from '../src/engine/protocol';
import { readReport, transformersLoadable, updateReportMetrics } from '../src/engine/prune/report';
import type { StageContext } from '../src/engine/context';
import { resolvePruneConfig } from '../src/engine/prune/config';
import { pruneCheckpoint as pruneStage } from '../src/engine/prune/run';
import { recoveryDir } from '../src/engine/prune/recovery';
import { pruneSweep } from '../src/engine/stages/prune-sweep';
import { analyze } from '../src/engine/analyze/model';
import { formatAnalysis } from '../src/engine/format';
import { corpusRows, maxAbsDiff, tinyModel, tmpDir, transformerConfig, writeCsv } from './prune-helpers';

let dir: string;
let model: string; // classifier + MLM head, 4 heads, FFN 64
let dataFile: string;
let rows: Row[];
let vocab: Vocab;
const events: EngineEvent[] = [];
const ctx: StageContext = { emit: (e) => events.push(e), backend: 'wasm' };

const transformer = (o: Partial<TransformerPruneConfig> = {}): TransformerPruneConfig =>
  transformerConfig({ n_iters: 2, ...o });

beforeAll(async () => {
  await initBackend('wasm');
  dir = tmpDir('stage');
  ({ rows, vocab } = corpusRows(40));
  dataFile = path.join(dir, 'train.csv');
  writeCsv(dataFile, rows);
  const { cfg, params } = tinyModel({ vocab: vocab.tokens.length, mlm: true, seed: 4 });
  cfg.max_len = 16;
  model = path.join(dir, 'finetuned');
  await saveCheckpoint(model, cfg, params, vocab);
  disposeParams(params);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const logitsOn = async (ck: string, r: Row[]) => {
  const c = loadCheckpoint(ck);
  const out = await predictLogits(c.params, c.config, encodeRows(r, c.vocab, 16));
  disposeParams(c.params);
  return out;
};

describe('pruneStage', () => {
  it('iterative, uneven heads: prunes to the targets, saves a loadable checkpoint and a report', async () => {
    events.length = 0;
    const config: PruneConfig = { transformer: transformer() };
    const out = path.join(dir, 'pruned');
    const r = await pruneStage({ model, config, out, dataFile, seed: 1 }, ctx);
    const ck = loadCheckpoint(out);
    const heads = headsPerLayer(ck.config);
    // 2 layers x 1 head in total, uneven, no layer empty
    expect(heads.every((h) => h >= 1)).toBe(true);
    expect(heads.reduce((a, b) => a + b)).toBeLessThanOrEqual(3);
    expect(ffnPerLayer(ck.config)).toEqual([32, 32]); // even FFN masking
    expect(ck.params.get('bert.encoder.layer.0.intermediate.dense.weight')!.shape).toEqual([32, 32]);
    // report: kept heads are the config's, in original ids; iterations follow the schedule
    const rep = readReport(r.report);
    rep.layers.forEach((l, i) => {
      expect(l.heads_kept).toEqual(keptHeads(ck.config, i));
      expect(l.head_importance).toHaveLength(4);
      expect(l.ffn_importance).toHaveLength(64);
      expect(l.ffn_kept).toBe(32);
    });
    expect(rep.iterations.map((it) => it.ffn_per_layer.reduce((a, b) => a + b))).toEqual([96, 64]);
    // heads: schedule 8 -> 5 -> 2 in total; a layer emptied by the global ranking gets one head back
    const headTotals = rep.iterations.map((it) => it.heads_per_layer.reduce((a, b) => a + b));
    [5, 2].forEach((n, i) => expect(headTotals[i] - n).toBeOneOf([0, 1]));
    expect(rep.after.encoder_params).toBeLessThan(rep.before.encoder_params / 2);
    expect(rep.after.flops).toBeLessThan(rep.before.flops);
    expect(rep.before.latency_ms).toBeGreaterThan(0);
    expect(rep.metrics.before).toBeTypeOf('number');
    expect(rep.metrics.after_prune).toBeTypeOf('number');
    expect(r.metrics.encoder_params).toBe(rep.after.encoder_params);
    expect(events.some((e) => e.type === 'prune-report')).toBe(true);
    // A missed head target is explained (2 layers x 1 head; a layer never left empty); FFN is met.
    const total = heads.reduce((a, b) => a + b);
    expect(rep.why ?? []).toHaveLength(total === 2 ? 0 : 1);
    if (total !== 2) expect(rep.why![0]).toMatchObject({ unit: 'heads', target: 2, kept: total });
    if (total !== 2) expect(rep.why![0].reasons.join(' ')).toContain('minimum per layer');
    expect(events.filter((e) => e.type === 'table')).toHaveLength(total === 2 ? 2 : 3);
    // the MLM head survives (the checkpoint keeps both heads)
    expect(ck.params.has('cls.predictions.bias')).toBe(true);
    disposeParams(ck.params);

    // keep_shape gives the same model, only zeroed instead of sliced
    const zeroed = path.join(dir, 'pruned-keep-shape');
    await pruneStage(
      { model, config: { transformer: transformer({ keep_shape: true }) }, out: zeroed, dataFile, seed: 1 },
      ctx,
    );
    const z = loadCheckpoint(zeroed);
    expect(headsPerLayer(z.config)).toEqual([4, 4]);
    disposeParams(z.params);
    expect(maxAbsDiff(await logitsOn(zeroed, rows), await logitsOn(out, rows))).toBeLessThanOrEqual(1e-5);

    updateReportMetrics(r.report, { after_refinetune: 0.5 });
    expect(readReport(r.report).metrics).toMatchObject({ after_refinetune: 0.5, before: rep.metrics.before });

    // analyze --baseline: the unpruned model timed alternately with the pruned one, the speed-up
    const an = await analyze(out, ctx, { baseline: model, batchSize: 4, seqLen: 16 });
    expect(an.analysis.baseline).toMatchObject({ model });
    const base = an.analysis.baseline!;
    expect(base.latency_ms_per_batch).toBeGreaterThan(0);
    expect(base.speedup).toBeCloseTo(base.latency_ms_per_batch / an.analysis.latency_ms_per_batch!, 9);
    expect(an.metrics.speedup).toBe(base.speedup);
    expect(formatAnalysis(an.analysis)).toContain(`${base.speedup.toFixed(2)}x faster`);
  });

  it('uneven FFN with multiple_of and head-first order: different sizes per layer, saved and loaded', async () => {
    const out = path.join(dir, 'uneven');
    const r = await pruneStage(
      {
        model,
        config: {
          transformer: transformer({
            ffn_even_masking: false,
            multiple_of: 8,
            target_ffn_size: 24,
            head_even_masking: true,
            target_num_of_heads: 2,
            pruning_order: 'head-first',
          }),
        },
        out,
        dataFile,
        seed: 1,
      },
      ctx,
    );
    const ck = loadCheckpoint(out);
    expect(headsPerLayer(ck.config)).toEqual([2, 2]);
    const ffn = ffnPerLayer(ck.config);
    expect(ffn.reduce((a, b) => a + b)).toBe(48);
    for (const f of ffn) expect(f % 8).toBe(0);
    // transformers' BertIntermediate has one size: the report and one log line say so when they differ.
    const uneven = new Set(ffn).size > 1;
    expect(r.reportData.transformers).toMatchObject({ loadable: !uneven });
    const lines = events.filter((e) => e.type === 'log' && /HF transformers cannot load/.test(e.message));
    expect(lines).toHaveLength(uneven ? 1 : 0);
    const note = transformersLoadable({ ...ck.config, intermediate_sizes: [24, 16] }).note;
    expect(note).toMatch(/\(24, 16\): HF transformers cannot load.*ffn_even_masking true.*export --format onnx/);
    expect(r.reportData.iterations).toHaveLength(4); // 2 x n_iters, alternating
    expect(r.reportData.iterations[0].ffn_per_layer).toEqual([64, 64]); // head step first
    disposeParams(ck.params);
  });

  it('prunes an already pruned model again with a masks file: pruned_heads accumulate', async () => {
    const first = path.join(dir, 'first');
    await pruneStage(
      {
        model,
        config: { transformer: transformer({ target_num_of_heads: 2, head_even_masking: true }) },
        out: first,
        dataFile,
        seed: 1,
      },
      ctx,
    );
    const c1 = loadCheckpoint(first);
    const present = [0, 1].map((l) => keptHeads(c1.config, l));
    disposeParams(c1.params);
    const masksFile = path.join(dir, 'masks.json');
    fs.writeFileSync(
      masksFile,
      JSON.stringify({
        head_mask: [
          [1, 0],
          [0, 1],
        ],
        ffn_mask: [Array(32).fill(1), Array.from({ length: 32 }, (_, i) => +(i < 8))],
      }),
    );
    const second = path.join(dir, 'second');
    const r = await pruneStage(
      {
        model: first,
        config: { transformer: transformer({ pruning_method: 'masks', masks_file: masksFile }) },
        out: second,
        dataFile,
        seed: 1,
      },
      ctx,
    );
    const c2 = loadCheckpoint(second);
    expect(keptHeads(c2.config, 0)).toEqual([present[0][0]]);
    expect(keptHeads(c2.config, 1)).toEqual([present[1][1]]);
    expect(c2.config.pruned_heads['0']).toHaveLength(3);
    expect(c2.config.intermediate_sizes).toEqual([32, 8]);
    expect(r.reportData.layers[0].heads_before).toEqual(present[0]);
    disposeParams(c2.params);
  });

  it('vocabulary pruning keeps the logits of in-vocabulary inputs, and prunes the MLM output', async () => {
    const out = path.join(dir, 'vocab-pruned');
    const r = await pruneStage(
      { model, config: { vocabulary: { min_count: 3, prune_lm_head: 'auto' } }, out, dataFile, seed: 1 },
      ctx,
    );
    const ck = loadCheckpoint(out);
    const removed = vocab.tokens.filter((t, i) => i >= 5 && vocab.counts[i] < 3);
    expect(removed.length).toBeGreaterThan(0);
    expect(ck.vocab.tokens).toEqual(vocab.tokens.filter((t) => !removed.includes(t)));
    expect(ck.config.vocab_size).toBe(ck.vocab.tokens.length);
    expect(r.reportData.vocabulary).toEqual({
      before: vocab.tokens.length,
      after: ck.vocab.tokens.length,
      removed: removed.length,
    });
    // inputs made only of kept tokens: identical classifier logits
    const kept = rows.filter((row) => row.tokens.every((t) => !removed.includes(String(t))));
    expect(kept.length).toBeGreaterThan(3);
    expect(maxAbsDiff(await logitsOn(out, kept), await logitsOn(model, kept))).toBe(0);
    // and the MLM logits of the kept tokens are the old ones at their old ids
    const old = loadCheckpoint(model);
    const keepIds = ck.vocab.tokens.map((t) => old.vocab.index.get(t)!);
    const b = makeBatches(encodeRows(kept.slice(0, 4), ck.vocab, 16), { batchSize: 4 })[0];
    const bOld = makeBatches(encodeRows(kept.slice(0, 4), old.vocab, 16), { batchSize: 4 })[0];
    const pos = tf.tensor1d([0, 1, 2], 'int32');
    const mNew = tf.tidy(() =>
      mlmLogits(
        ck.params,
        ck.config,
        encode(ck.params, ck.config, {
          ids: tf.tensor2d(b.ids, [b.B, b.T], 'int32'),
          mask: tf.tensor2d(b.mask, [b.B, b.T]),
        }),
        pos,
      ).dataSync(),
    );
    const mOld = tf.tidy(() =>
      tf
        .gather(
          mlmLogits(
            old.params,
            old.config,
            encode(old.params, old.config, {
              ids: tf.tensor2d(bOld.ids, [b.B, b.T], 'int32'),
              mask: tf.tensor2d(bOld.mask, [b.B, b.T]),
            }),
            pos,
          ),
          keepIds,
          1,
        )
        .dataSync(),
    );
    expect(maxAbsDiff(mNew, mOld)).toBeLessThanOrEqual(1e-6);
    [ck, old].forEach((c) => disposeParams(c.params));
    pos.dispose();

    // vocabulary then transformer in one go (TextPruner's PipelinePruner order)
    const both = path.join(dir, 'both');
    const r2 = await pruneStage(
      {
        model,
        config: { vocabulary: { min_count: 3, prune_lm_head: 'auto' }, transformer: transformer() },
        out: both,
        dataFile,
        seed: 1,
      },
      ctx,
    );
    const c2 = loadCheckpoint(both);
    expect(c2.config.vocab_size).toBe(r.reportData.vocabulary!.after);
    expect(ffnPerLayer(c2.config)).toEqual([32, 32]);
    expect(r2.reportData.after.params).toBeLessThan(r.reportData.after.params);
    disposeParams(c2.params);
  });

  it('gradual pruning: trains between iterations, reaches the targets, reports each recovery', async () => {
    events.length = 0;
    const settings = getPreset('tiny');
    settings.refinetune.batch_size = 16;
    const cfg = transformer({ n_iters: 3, recovery_epochs: 1, target_num_of_heads: 1, target_ffn_size: 16 });
    const out = path.join(dir, 'gradual');
    const r = await pruneStage({ model, config: { transformer: cfg }, out, dataFile, seed: 1, settings }, ctx);
    const ck = loadCheckpoint(out);
    expect(headsPerLayer(ck.config).reduce((a, b) => a + b)).toBeLessThanOrEqual(3);
    expect(ffnPerLayer(ck.config)).toEqual([16, 16]);
    const rep = readReport(r.report);
    // 3 iterations, a recovery (1 epoch, so 1 epoch event each) after the first two
    expect(rep.iterations.map((it) => it.ffn_per_layer.reduce((a, b) => a + b))).toEqual([96, 64, 32]);
    expect(rep.iterations.map((it) => typeof it.recovered_val_score)).toEqual(['number', 'number', 'undefined']);
    expect(events.filter((e) => e.type === 'epoch' && e.stage === 'prune')).toHaveLength(2);
    const iterTable = events.find((e) => e.type === 'table' && e.title.startsWith('Pruning: iterations'));
    expect(iterTable && iterTable.type === 'table' && iterTable.rows.map((row) => row[3] === '')).toEqual([
      false,
      false,
      true,
    ]);
    rep.layers.forEach((l, i) => {
      expect(l.heads_kept).toEqual(keptHeads(ck.config, i));
      expect(l.ffn_kept).toBe(16);
      expect(l.ffn_importance).toHaveLength(64); // scored on the unpruned model
    });
    // the recovery training changed the weights (one-shot pruning to the same targets differs),
    // the MLM head is still there, and the rounds' checkpoints are gone
    const oneShot = path.join(dir, 'one-shot');
    await pruneStage(
      { model, config: { transformer: { ...cfg, recovery_epochs: 0 } }, out: oneShot, dataFile, seed: 1 },
      ctx,
    );
    const o = loadCheckpoint(oneShot);
    expect(
      maxAbsDiff(o.params.get('classifier.weight')!.dataSync(), ck.params.get('classifier.weight')!.dataSync()),
    ).toBeGreaterThan(1e-4);
    expect(ck.params.has('cls.predictions.bias')).toBe(true);
    expect(fs.existsSync(recoveryDir(out))).toBe(false);
    disposeParams(ck.params);
    disposeParams(o.params);
    // keep_shape cannot be combined with it
    await expect(
      pruneStage(
        {
          model,
          config: { transformer: { ...cfg, keep_shape: true } },
          out: path.join(dir, 'x'),
          dataFile,
          seed: 1,
          settings,
        },
        ctx,
      ),
    ).rejects.toThrow(/recovery_epochs needs keep_shape false/);
  });

  it('rejects what it cannot do with a message naming the config', async () => {
    const unlabeled = path.join(dir, 'test.csv');
    writeCsv(
      unlabeled,
      rows.slice(0, 5).map((r) => ({ ...r, labels: null })),
    );
    await expect(
      pruneStage(
        {
          model,
          config: { transformer: transformer({ use_logits: false }) },
          out: path.join(dir, 'x'),
          dataFile: unlabeled,
          seed: 1,
        },
        ctx,
      ),
    ).rejects.toThrow(/test\.csv:1: row 'r0' has no labels, but use_logits is false/);
    await expect(
      pruneStage(
        {
          model,
          config: { transformer: transformer({ target_num_of_heads: 5 }) },
          configFile: 'a.prune.json',
          out: path.join(dir, 'x'),
          dataFile,
          seed: 1,
        },
        ctx,
      ),
    ).rejects.toThrow(/a\.prune\.json: transformer\.target_num_of_heads 5 is more than the model has/);
    expect(() => resolvePruneConfig({ transformer: { n_iters: 3 } }, {}, 'b.prune.json')).toThrow(
      /b\.prune\.json: \/transformer: missing 'target_ffn_size'/,
    );
    expect(
      resolvePruneConfig({ transformer: { n_iters: 3 } }, { transformer: transformer() }, 'b.prune.json').transformer!
        .n_iters,
    ).toBe(3);
  });
});

describe('pruneSweep', () => {
  it('prunes, re-fine-tunes and scores each config into one table', async () => {
    const run = path.join(dir, 'run');
    fs.mkdirSync(path.join(run, 'data'), { recursive: true });
    writeCsv(path.join(run, 'data', 'train.csv'), rows);
    writeCsv(path.join(run, 'data', 'test.csv'), rows.slice(0, 10));
    const cfgFile = path.join(dir, 'small.prune.json');
    fs.writeFileSync(
      cfgFile,
      JSON.stringify({ transformer: { target_ffn_size: 16, target_num_of_heads: 1, n_iters: 1 } }),
    );
    const settings = getPreset('tiny');
    settings.refinetune.epochs = 1;
    events.length = 0;
    const s = await pruneSweep({ model, configs: [cfgFile], run, dataFile, settings }, ctx);
    expect(s.rows.map((r) => r.config)).toEqual(['(unpruned)', 'small']);
    expect(s.rows[1].encoder_params).toBeLessThan(s.rows[0].encoder_params / 2);
    expect(s.rows.map((r) => r.structures)).toEqual(['none', 'heads+FFN']);
    expect(s.rows[1].encoder_kept).toBeCloseTo(s.rows[1].encoder_params / s.rows[0].encoder_params);
    expect(JSON.parse(fs.readFileSync(s.file, 'utf8')).rows).toHaveLength(2);
    expect(readReport(path.join(run, 'sweep', 'small', 'prune-report.json')).metrics.after_refinetune).toBe(
      s.rows[1].score,
    );
    expect(events.some((e) => e.type === 'table' && e.title.startsWith('prune-sweep'))).toBe(true);
  });
});
