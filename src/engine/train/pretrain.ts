// pretrain: masked-LM from scratch on the run's corpus (train + test texts).
// 15% of tokens (single tokens, or runs of up to mask_ngram), 80/10/10 [MASK]/random/keep,
// re-masked every epoch (dynamic masking); AdamW,
// warmup then decay, gradient clipping. Writes <run>/pretrain (final) and <run>/pretrain-last
// (resumable: weights + optimizer state + epoch) after every epoch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Settings } from '../config/settings';
import { readRows, tokenizerIn } from '../data/rows';
import { encodeRows, makeBatches, type Batch, type Example } from '../data/encode';
import { maskBatch, padMasked, type MaskedBatch } from '../data/masking';
import { Rng } from '../data/rng';
import { readVocab, type SpecialIds } from '../data/vocab';
import { UserError } from '../errors';
import { loadCheckpoint, loadTensorFile, saveCheckpoint } from '../io/checkpoint';
import { readJson, recoverDir } from '../io/atomic';
import { encode, mlmLogits, softmaxCrossEntropy, toInputs } from '../model/bert';
import { makeConfig, type BertConfig } from '../model/config';
import { disposeParams, initParams, type Params } from '../model/params';
import { train } from './loop';
import { AdamW, optimizerTensors, restoreOptimizer } from './optim';
import { log, StageContext } from '../context';
import { noteEpochsDone } from '../io/run';
import { inferenceRecorder, queuePass, replayPadding } from '../ops/record';
import { runPaths } from '../io/paths';

export const TRAIN_STATE = 'train-state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface TrainState {
  epochsDone: number;
  step: number;
  best?: number;
}

export type MlmBatch = Batch & { masked: MaskedBatch };

/** MLM loss and accuracy on one masked batch. */
export function mlmStep(
  params: Parameters<typeof encode>[0],
  cfg: Parameters<typeof encode>[1],
  b: MlmBatch,
  dropout: Rng | null,
) {
  const inp = toInputs(b.masked.input, b.mask, b.B, b.T, b.types);
  const hidden = encode(params, cfg, inp, { dropout });
  const logits = mlmLogits(params, cfg, hidden, tf.tensor1d(b.masked.positions, 'int32'));
  const targets = tf.tensor1d(b.masked.targets, 'int32');
  const weights = b.masked.weights ? tf.tensor1d(b.masked.weights) : undefined;
  return { logits, loss: softmaxCrossEntropy(logits, targets, weights), targets, weights };
}

/** How MLM batches are masked: the vocabulary, the draw, and the padding where steps are recorded. */
export interface MaskOptions {
  V: number;
  rng: Rng;
  maskProb: number;
  maskNgram: number;
  special: SpecialIds;
  padTo?: ReturnType<typeof replayPadding>;
}

/**
 * The batches masked for MLM, drawing from o.rng. With padTo (where steps are recorded: webgpu)
 * the masked positions are padded to coarse buckets with weight 0, as the batches' lengths are, so
 * that an epoch or an evaluation meets few shapes; the masks drawn are the same either way.
 */
export function maskedBatches(batches: Batch[], o: MaskOptions): MlmBatch[] {
  return batches.map((b) => {
    const masked = maskBatch(b, o.V, o.rng, o.maskProb, o.maskNgram, o.special);
    return { ...b, masked: o.padTo ? padMasked(masked) : masked };
  });
}

/** How many of a batch's masked positions are real (padded ones weigh 0). */
export function realMasked(b: MlmBatch): number {
  const w = b.masked.weights;
  return w ? w.filter((x) => x > 0).length : b.masked.targets.length;
}

/** The evaluation sample's batches, masked once (and padded as the training batches are). */
export function mlmEvalBatches(examples: Example[], o: MaskOptions & { batchSize: number }): MlmBatch[] {
  return maskedBatches(makeBatches(examples, { batchSize: o.batchSize, padId: o.special.pad, padTo: o.padTo }), o);
}

/**
 * MLM loss (mean over the masked tokens) and accuracy on the evaluation batches, without dropout.
 * Each batch's pass goes through queuePass (recorded and replayed on webgpu), its two numbers read
 * back while the next batches run.
 */
export async function mlmEvaluation(
  params: Params,
  cfg: BertConfig,
  batches: MlmBatch[],
): Promise<{ mlm_loss: number; mlm_accuracy: number }> {
  let loss = 0;
  let correct = 0;
  let n = 0;
  const rec = inferenceRecorder(params);
  const pending: Promise<void>[] = [];
  for (const batch of batches) {
    const k = realMasked(batch);
    // [mean loss, correct predictions] of the batch's masked tokens (padded ones weigh 0)
    const q = await queuePass(rec, batch, () =>
      tf.tidy(() => {
        const r = mlmStep(params, cfg, batch, null);
        const hit = tf.cast(tf.equal(tf.argMax(r.logits, -1), r.targets), 'float32');
        return tf.stack([r.loss, tf.sum(r.weights ? tf.mul(hit, r.weights) : hit)]);
      }),
    );
    pending.push(
      q.result.then((d) => {
        loss += d[0] * k;
        correct += d[1];
      }),
    );
    n += k;
  }
  await Promise.all(pending);
  return { mlm_loss: loss / Math.max(1, n), mlm_accuracy: correct / Math.max(1, n) };
}

/** Where pretraining writes: the final checkpoint, and the last epoch's (what --resume continues). */
export interface PretrainOptions {
  out: string;
  last: string;
  resume?: boolean;
}

export async function pretrain(run: string, s: Settings, ctx: StageContext, opts: PretrainOptions) {
  const p = runPaths(run);
  if (!fs.existsSync(path.join(p.vocab, 'vocab.txt')))
    throw new UserError(`${run}: no vocabulary yet; run corpus-vocab first`);
  const vocab = readVocab(p.vocab);
  const tokenizer = tokenizerIn(p.vocab);
  const texts = [...readRows(p.train, { tokenizer }).rows, ...readRows(p.test, { tokenizer }).rows];
  const examples = encodeRows(
    texts.map((r) => ({ ...r, labels: null })),
    vocab,
    s.model.max_len,
  );
  const V = vocab.tokens.length;

  let cfg = makeConfig(s.model, V, 'mlm');
  let params = initParams(cfg, { mlm: true, classifier: false, seed: s.seed });
  let startEpoch = 0;
  let optimizer: AdamW | undefined;
  const pt = s.pretrain;
  if (opts.resume) recoverDir(opts.last); // killed while replacing it: the previous one is aside
  if (opts.resume && !fs.existsSync(path.join(opts.last, TRAIN_STATE)))
    log(ctx, `--resume: no epoch checkpoint in ${opts.last} yet; starting from the beginning`, 'warn');
  if (opts.resume && fs.existsSync(path.join(opts.last, TRAIN_STATE))) {
    const st = readJson<TrainState>(path.join(opts.last, TRAIN_STATE));
    disposeParams(params);
    const ck = loadCheckpoint(opts.last);
    cfg = ck.config;
    params = ck.params;
    optimizer = restoreOptimizer(
      new AdamW({ lr: pt.lr, weightDecay: pt.weight_decay }),
      loadTensorFile(path.join(opts.last, OPTIMIZER_FILE)),
      st.step,
    );
    startEpoch = st.epochsDone;
    log(ctx, `resuming pretraining after epoch ${startEpoch} from ${opts.last}`);
  }

  const padTo = replayPadding(s.model.max_len);
  // A fixed, masked evaluation sample: MLM loss and accuracy comparable across epochs.
  const evalBatches = mlmEvalBatches(examples.slice(0, 512), {
    batchSize: pt.batch_size,
    V,
    rng: new Rng(s.seed + 99),
    maskProb: pt.mask_prob,
    maskNgram: pt.mask_ngram,
    special: vocab.special,
    padTo,
  });
  const evaluateMlm = () => mlmEvaluation(params, cfg, evalBatches);

  let last: Record<string, number> = {};
  const opt = await train({
    stage: 'pretrain',
    params,
    epochs: pt.epochs,
    // Where steps are recorded (webgpu), lengths and the number of masked positions are rounded
    // up so that an epoch meets few shapes; the masks drawn are the same either way.
    batches: (_epoch, rng) =>
      maskedBatches(
        makeBatches(examples, { batchSize: pt.batch_size, rng, bucket: true, padId: vocab.special.pad, padTo }),
        { V, rng, maskProb: pt.mask_prob, maskNgram: pt.mask_ngram, special: vocab.special, padTo },
      ),
    loss: (b, dropout) => mlmStep(params, cfg, b as MlmBatch, dropout).loss,
    lr: pt.lr,
    weightDecay: pt.weight_decay,
    warmupRatio: pt.warmup_ratio,
    schedule: pt.schedule,
    clipNorm: pt.clip_norm,
    seed: s.seed,
    startEpoch,
    optimizer,
    emit: ctx.emit,
    signal: ctx.signal,
    afterEpoch: async (epoch, _loss, opt) => {
      last = await evaluateMlm();
      const state: TrainState = { epochsDone: epoch + 1, step: opt.step };
      await saveCheckpoint(opts.last, cfg, params, vocab, {
        json: { [TRAIN_STATE]: state },
        tensors: { [OPTIMIZER_FILE]: optimizerTensors(opt) },
      });
      noteEpochsDone(run, 'pretrain', epoch + 1);
      return last;
    },
  });
  await saveCheckpoint(opts.out, cfg, params, vocab);
  ctx.emit({ type: 'checkpoint', stage: 'pretrain', path: opts.out, kind: 'final' });
  opt.dispose();
  disposeParams(params);
  return { metrics: last, checkpoint: opts.out };
}
