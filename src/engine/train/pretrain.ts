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
import { encodeRows, makeBatches, type Batch } from '../data/encode';
import { maskBatch, padMasked, type MaskedBatch } from '../data/masking';
import { Rng } from '../data/rng';
import { readVocab } from '../data/vocab';
import { UserError } from '../errors';
import { loadCheckpoint, loadTensorFile, saveCheckpoint } from '../io/checkpoint';
import { readJson, recoverDir } from '../io/atomic';
import { encode, mlmLogits, softmaxCrossEntropy, toInputs } from '../model/bert';
import { makeConfig } from '../model/config';
import { disposeParams, initParams } from '../model/params';
import { train } from './loop';
import { AdamW, optimizerTensors, restoreOptimizer } from './optim';
import { log, StageContext } from '../context';
import { noteEpochsDone } from '../io/run';
import { replayPadding } from '../ops/record';
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
  return { logits, loss: softmaxCrossEntropy(logits, targets, weights), targets };
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

  // A fixed, masked evaluation sample: MLM loss and accuracy comparable across epochs.
  const evalRng = new Rng(s.seed + 99);
  const evalBatches: MlmBatch[] = makeBatches(examples.slice(0, 512), {
    batchSize: pt.batch_size,
    padId: vocab.special.pad,
  }).map((b) => ({
    ...b,
    masked: maskBatch(b, V, evalRng, pt.mask_prob, pt.mask_ngram, vocab.special),
  }));
  const evaluateMlm = async () => {
    let loss = 0;
    let correct = 0;
    let n = 0;
    for (const b of evalBatches) {
      const [l, c] = tf.tidy(() => {
        const r = mlmStep(params, cfg, b, null);
        const pred = tf.argMax(r.logits, -1);
        return [r.loss, tf.sum(tf.cast(tf.equal(pred, r.targets), 'int32'))];
      });
      const k = b.masked.targets.length;
      loss += (await l.data())[0] * k;
      correct += (await c.data())[0];
      tf.dispose([l, c]);
      n += k;
    }
    return { mlm_loss: loss / Math.max(1, n), mlm_accuracy: correct / Math.max(1, n) };
  };

  let last: Record<string, number> = {};
  const padTo = replayPadding(s.model.max_len);
  const opt = await train({
    stage: 'pretrain',
    params,
    epochs: pt.epochs,
    // Where steps are recorded (webgpu), lengths and the number of masked positions are rounded
    // up so that an epoch meets few shapes; the masks drawn are the same either way.
    batches: (_epoch, rng) =>
      makeBatches(examples, { batchSize: pt.batch_size, rng, bucket: true, padId: vocab.special.pad, padTo }).map(
        (b) => {
          const masked = maskBatch(b, V, rng, pt.mask_prob, pt.mask_ngram, vocab.special);
          return { ...b, masked: padTo ? padMasked(masked) : masked };
        },
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
