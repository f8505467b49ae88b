// The training loop shared by pretraining, fine-tuning and re-fine-tuning:
// per step: loss -> grads (variableGrads) -> [FGM] -> clip -> AdamW with scheduled lr -> [EMA];
// per epoch: the caller's validation / checkpointing; events for progress; cancel between steps.
//
// Determinism: the data order and dropout masks of epoch e come from Rng(seed, e), so a run
// resumed from the end of epoch e continues exactly as the uninterrupted run would have.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../data/encode';
import { Rng } from '../data/rng';
import { CancelledError, UserError } from '../errors';
import { WORD_EMB } from '../model/names';
import type { Params } from '../model/params';
import type { EventSink, StageName } from '../protocol';
import type { Ema } from './ema';
import { AdamW, lrFactor, Schedule } from './optim';
import { ops } from '../ops';

export interface TrainSpec extends StepSpec<Batch> {
  stage: StageName;
  epochs: number;
  /** The batches of epoch e, in training order (use rng for shuffling). */
  batches: (epoch: number, rng: Rng) => Batch[];
  lr: number;
  weightDecay: number;
  warmupRatio: number;
  schedule: Schedule;
  seed: number;
  lrMultiplier?: (name: string) => number;
  /** Called after every epoch with the mean training loss; returns the epoch's metrics. */
  afterEpoch: (epoch: number, trainLoss: number, opt: AdamW) => Promise<Record<string, number>>;
  /** Resume: the first epoch to run and the optimizer state at its start. */
  startEpoch?: number;
  optimizer?: AdamW;
  emit: EventSink;
  signal?: AbortSignal;
}

/** What one optimizer step needs: the model, the loss, and the step's extras (FGM, clipping, EMA). */
export interface StepSpec<B> {
  params: Params;
  /** The scalar loss of one batch; called inside the gradient tape. */
  loss: (b: B, dropout: Rng) => tf.Scalar;
  clipNorm: number;
  /** FGM adversarial training on the word embeddings: epsilon, 0 = off. */
  fgmEpsilon?: number;
  /** Weight averaging: updated after every optimizer step. */
  ema?: Ema;
}

/** Gradients of spec.loss w.r.t. every trainable parameter, keyed by HF name. The loss stays a tensor. */
function gradients<B>(spec: StepSpec<B>, b: B, dropout: Rng): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const names = [...spec.params.keys()];
  const vars = names.map((n) => spec.params.get(n)!);
  const byVar = new Map(vars.map((v, i) => [v.name, names[i]]));
  const { value, grads } = tf.variableGrads(() => spec.loss(b, dropout), vars);
  const out: Record<string, tf.Tensor> = {};
  for (const [vn, g] of Object.entries(grads)) out[byVar.get(vn)!] = g;
  return { value, grads: out };
}

/**
 * One training step, the one every stage and `bench` run: loss and gradients, [FGM], global-norm
 * clipping and AdamW at learning rate lr (opt.apply), [EMA]. The loss is read back once, after the
 * whole step is queued (on a GPU the step runs while we wait), and nothing else is read back.
 * Returns the loss; a loss that is not finite is returned as is (the caller stops).
 */
export async function trainStep<B>(spec: StepSpec<B>, opt: AdamW, b: B, dropout: Rng, lr: number): Promise<number> {
  const { value, grads } = gradients(spec, b, dropout);
  if (spec.fgmEpsilon && grads[WORD_EMB]) {
    // FGM (Miyato et al.): perturb the embeddings along their gradient, add the adversarial grads.
    const emb = spec.params.get(WORD_EMB)!;
    const r = tf.tidy(() => {
      const g = grads[WORD_EMB];
      const n = tf.norm(g);
      return tf.mul(g, tf.div(spec.fgmEpsilon!, tf.add(n, 1e-12)));
    });
    // In a tidy, like every other assign: assign() shares the new tensor's data, and the
    // tensor itself left alive kept two embedding matrices a step (wasm ran out of memory).
    tf.tidy(() => emb.assign(tf.add(emb, r)));
    const adv = gradients(spec, b, dropout);
    adv.value.dispose();
    tf.tidy(() => emb.assign(tf.sub(emb, r)));
    r.dispose();
    for (const [k, g] of Object.entries(adv.grads)) {
      const sum = tf.add(grads[k], g);
      grads[k].dispose();
      g.dispose();
      grads[k] = sum;
    }
  }
  opt.apply(spec.params, grads, lr, spec.clipNorm);
  spec.ema?.update(spec.params, opt.step - 1);
  for (const g of Object.values(grads)) g.dispose();
  const loss = (await value.data())[0];
  value.dispose();
  ops().check();
  return loss;
}

export async function train(spec: TrainSpec): Promise<AdamW> {
  const opt =
    spec.optimizer ?? new AdamW({ lr: spec.lr, weightDecay: spec.weightDecay, lrMultiplier: spec.lrMultiplier });
  const start = spec.startEpoch ?? 0;
  const epochBatches = (epoch: number) => spec.batches(epoch, new Rng(spec.seed * 1009 + epoch));
  // The first epoch's batches also give the number of steps per epoch (the same every epoch).
  let batches = epochBatches(start);
  const stepsPerEpoch = batches.length;
  const total = stepsPerEpoch * spec.epochs;
  const warmup = Math.round(total * spec.warmupRatio);
  const started = Date.now();
  let tokensSeen = 0;
  if (start > 0) spec.emit({ type: 'resume', stage: spec.stage, epoch: start });
  for (let epoch = start; epoch < spec.epochs; epoch++) {
    const dropout = new Rng(spec.seed * 7919 + epoch);
    if (epoch > start) batches = epochBatches(epoch);
    let lossSum = 0;
    for (let i = 0; i < batches.length; i++) {
      if (spec.signal?.aborted) throw new CancelledError(`${spec.stage} cancelled in epoch ${epoch + 1}`);
      const b = batches[i];
      const step = epoch * stepsPerEpoch + i;
      const lr = spec.lr * lrFactor(step, total, warmup, spec.schedule);
      const loss = await trainStep(spec, opt, b, dropout, lr);
      if (!Number.isFinite(loss)) {
        throw new UserError(
          `${spec.stage}: the loss became ${loss} at epoch ${epoch + 1}, step ${i + 1}; ` +
            'stopped (the last good checkpoint is kept). Try a lower lr or a smaller clip_norm.',
        );
      }
      lossSum += loss;
      tokensSeen += b.tokens;
      const elapsed = (Date.now() - started) / 1000;
      const done = step + 1 - start * stepsPerEpoch;
      spec.emit({
        type: 'step',
        stage: spec.stage,
        epoch: epoch + 1,
        epochs: spec.epochs,
        step: step + 1,
        steps: total,
        loss,
        lr,
        tokensPerSecond: tokensSeen / Math.max(elapsed, 1e-9),
        etaSeconds: (elapsed / done) * (total - step - 1),
      });
      // Let IPC messages (cancel) in between steps.
      await new Promise((r) => setImmediate(r));
    }
    const metrics = await spec.afterEpoch(epoch, lossSum / Math.max(1, batches.length), opt);
    spec.emit({
      type: 'epoch',
      stage: spec.stage,
      epoch: epoch + 1,
      epochs: spec.epochs,
      metrics: { train_loss: lossSum / Math.max(1, batches.length), ...metrics },
    });
  }
  return opt;
}
