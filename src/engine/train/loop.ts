// The training loop shared by pretraining, fine-tuning and re-fine-tuning:
// per step: loss -> grads (model/grads.ts variableGrads) -> [FGM] -> clip -> AdamW with scheduled lr -> [EMA];
// per epoch: the caller's validation / checkpointing; events for progress; cancel between steps.
//
// Determinism: the data order and dropout masks of epoch e come from Rng(seed, e), so a run
// resumed from the end of epoch e continues exactly as the uninterrupted run would have.
//
// On webgpu a step is recorded the second time its shapes are seen and replayed after that
// (backend/webgpu-record.ts): one submit a step, its loss read back a few steps later.
//
// In mixed precision (ops().precision(), --precision mixed on webgpu) every step is loss-scaled
// (train/loss-scale.ts): a step whose gradients overflow is skipped on the device, and its step
// event says so (skipped, lossScale; the run's history keeps them; the epoch's metrics count them).
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../data/encode';
import { Rng } from '../data/rng';
import {
  addHostMs,
  beginStepScalars,
  noteUnrecorded,
  Recorder,
  recordingBackend,
  recordingOn,
  SEED0,
  SLOT,
} from '../ops/record';
import { nextSeed } from '../model/bert';
import { variableGrads } from '../model/grads';
import { CancelledError, UserError } from '../errors';
import { WORD_EMB } from '../model/names';
import type { Params } from '../model/params';
import type { EventSink, StageName } from '../protocol';
import type { Ema } from './ema';
import { LossScaler, ScaledStep } from './loss-scale';
import { AdamW, lrFactor, Schedule } from './optim';
import { ops } from '../ops';

export interface TrainSpec extends StepSpec<Batch> {
  stage: StageName;
  epochs: number;
  /** The batches of epoch e, in training order (use rng for shuffling). */
  batches: (epoch: number, rng: Rng) => Batch[];
  /** Work on a batch right before its step, outside the gradient tape (a teacher's targets). */
  prepare?: (b: Batch) => Promise<Batch>;
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
  /** Mixed precision's loss scaler: made at the first step in mixed precision (lossScaling). */
  lossScale?: LossScaler;
}

/** The spec's loss scaler in mixed precision (made on first use; its owner disposes it), else null. */
export function lossScaling<B>(spec: StepSpec<B>): LossScaler | null {
  if (ops().precision() !== 'mixed') return null;
  spec.lossScale ??= new LossScaler();
  return spec.lossScale;
}

/**
 * Gradients of spec.loss w.r.t. every trainable parameter, keyed by HF name. The loss stays a
 * tensor. With a loss scaler the gradients are of the scaled loss (the value is the loss itself).
 */
function gradients<B>(
  spec: StepSpec<B>,
  b: B,
  dropout: Rng,
  scaler: LossScaler | null,
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const names = [...spec.params.keys()];
  const vars = names.map((n) => spec.params.get(n)!);
  const byVar = new Map(vars.map((v, i) => [v.name, names[i]]));
  const f = () => (scaler ? scaler.scaled(spec.loss(b, dropout)) : spec.loss(b, dropout));
  const { value, grads } = variableGrads(f, vars);
  const out: Record<string, tf.Tensor> = {};
  for (const [vn, g] of Object.entries(grads)) out[byVar.get(vn)!] = g;
  if (!scaler) return { value, grads: out };
  const loss = scaler.unscaled(value);
  value.dispose();
  return { value: loss, grads: out };
}

/**
 * The step's programs, queued: loss and gradients, [FGM], clip + AdamW, [EMA]. Returns the loss
 * tensor; with a loss scaler [loss, scale, good, skipped total, skipped] (LossScaler.output).
 */
function queueStep<B>(spec: StepSpec<B>, opt: AdamW, b: B, dropout: Rng, lr: number): tf.Tensor {
  if (recordingBackend()) beginStepScalars();
  const scaler = lossScaling(spec);
  const { value, grads } = gradients(spec, b, dropout, scaler);
  if (spec.fgmEpsilon && grads[WORD_EMB]) {
    // FGM (Miyato et al.): perturb the embeddings along their gradient, add the adversarial grads.
    const emb = spec.params.get(WORD_EMB)!;
    const r = tf.tidy(() => {
      const g = grads[WORD_EMB];
      const n = tf.norm(g);
      const d = tf.mul(g, tf.div(spec.fgmEpsilon!, tf.add(n, 1e-12)));
      // Loss-scaled gradients that overflowed (the step will be skipped): no perturbation where
      // it is not a number, so that the embeddings come back unchanged (g / inf is 0, inf / inf NaN).
      return scaler ? tf.where(tf.isNaN(d), tf.zerosLike(d), d) : d;
    });
    // In a tidy, like every other assign: assign() shares the new tensor's data, and the
    // tensor itself left alive kept two embedding matrices a step (wasm ran out of memory).
    // On webgpu in place: the embeddings keep their buffer (a recorded step names it).
    ops().addScaled(emb, r, 1);
    const adv = gradients(spec, b, dropout, scaler);
    adv.value.dispose();
    ops().addScaled(emb, r, -1);
    r.dispose();
    for (const [k, g] of Object.entries(adv.grads)) {
      const sum = tf.add(grads[k], g);
      grads[k].dispose();
      g.dispose();
      grads[k] = sum;
    }
  }
  opt.apply(spec.params, grads, lr, spec.clipNorm, scaler ?? undefined);
  spec.ema?.update(spec.params, opt.step - 1);
  for (const g of Object.values(grads)) g.dispose();
  if (!scaler) return value;
  const out = scaler.output(value);
  value.dispose();
  return out;
}

/** What a training run records its steps with on webgpu (null elsewhere). */
export interface StepRecording {
  recorder: Recorder;
  /** The model's parameter shapes and the step's options: a recording's key starts with it. */
  modelKey: string;
}

/** A recorder for the steps of spec (webgpu only; BERT_PRUNER_RECORD=0 turns recording off). */
export function stepRecording<B>(spec: StepSpec<B>, opt: AdamW, log: (line: string) => void): StepRecording | null {
  const be = recordingOn();
  if (!be) return null;
  const scaler = lossScaling(spec);
  const vars = () => [
    ...spec.params.values(),
    ...opt.m.values(),
    ...opt.v.values(),
    ...(spec.ema ? spec.ema.shadow.values() : []),
    ...(scaler ? scaler.variables() : []),
  ];
  const shapes = [...spec.params].map(([n, v]) => `${n}:${v.shape.join('x')}`).join(',');
  const modelKey =
    `${shapes};fgm=${spec.fgmEpsilon ?? 0};clip=${spec.clipNorm};ema=${spec.ema ? 1 : 0}` + (scaler ? ';amp=1' : '');
  return { recorder: new Recorder('train step', be, vars, log), modelKey };
}

/**
 * Queue one training step, the one every stage and `bench` run: loss and gradients, [FGM], global-
 * norm clipping and AdamW at learning rate lr (opt.apply), [EMA]. Resolves once the step is queued,
 * with its loss to come: op by op the loss is read back before that (on a GPU the step runs while
 * we wait); a replayed recording (rec) resolves at its submit and reads the loss back later.
 * In mixed precision `scaled` comes with it: the loss scale and whether the step was skipped.
 */
export async function queueTrainStep<B extends object>(
  spec: StepSpec<B>,
  opt: AdamW,
  b: B,
  dropout: Rng,
  lr: number,
  rec?: StepRecording | null,
): Promise<{ loss: Promise<number>; scaled: Promise<ScaledStep> | null; ran: StepKind }> {
  const { out, ran } = await queueTrainStepRaw(spec, opt, b, dropout, lr, rec);
  const amp = !!spec.lossScale && ops().precision() === 'mixed';
  return {
    loss: out.then((a) => a[0]),
    scaled: amp ? out.then((a) => LossScaler.read(a)) : null,
    ran,
  };
}

/** How a step ran: replayed from a recording, captured into one (run op by op meanwhile), op by op. */
export type StepKind = 'replayed' | 'captured' | 'opByOp';

/** queueTrainStep's read-back: the loss, or a loss scaler's output (LossScaler.output). */
async function queueTrainStepRaw<B extends object>(
  spec: StepSpec<B>,
  opt: AdamW,
  b: B,
  dropout: Rng,
  lr: number,
  rec?: StepRecording | null,
): Promise<{ out: Promise<ArrayLike<number>>; ran: StepKind }> {
  const t0 = performance.now();
  if (rec) {
    const key = rec.recorder.key(rec.modelKey, b);
    const plan = rec.recorder.plan(key);
    if (plan.kind === 'replay') {
      const { c1, c2 } = opt.nextStep();
      const d = spec.ema?.decayAt(opt.step - 1) ?? 0;
      const seeds = Array.from({ length: plan.rec.seeds }, () => nextSeed(dropout));
      const r = await rec.recorder.replay(plan.rec, b, ({ f, u }) => {
        f[SLOT.lr] = lr;
        f[SLOT.c1] = c1;
        f[SLOT.c2] = c2;
        f[SLOT.emaDecay] = d;
        u[SLOT.step] = opt.step;
        seeds.forEach((sd, i) => (u[SEED0 + i] = sd));
      });
      return {
        out: r.result.then((a) => {
          ops().check();
          return a;
        }),
        ran: 'replayed',
      };
    }
    if (plan.kind === 'record') {
      const { out } = await rec.recorder.record(key, b, () => queueStep(spec, opt, b, dropout, lr));
      return { out: Promise.resolve(await readLoss(out as tf.Tensor, t0)), ran: 'captured' };
    }
  }
  if (recordingBackend()) noteUnrecorded();
  const step = () => queueStep(spec, opt, b, dropout, lr);
  return { out: Promise.resolve(await readLoss(rec ? await rec.recorder.run(step) : step(), t0)), ran: 'opByOp' };
}

async function readLoss(value: tf.Tensor, t0: number): Promise<ArrayLike<number>> {
  addHostMs(performance.now() - t0);
  const a = await value.data();
  value.dispose();
  ops().check();
  return a as Float32Array;
}

/**
 * One training step (queueTrainStep), its loss awaited. Returns the loss; a loss that is not
 * finite is returned as is (the caller stops).
 */
export async function trainStep<B extends object>(
  spec: StepSpec<B>,
  opt: AdamW,
  b: B,
  dropout: Rng,
  lr: number,
  rec?: StepRecording | null,
): Promise<number> {
  return (await queueTrainStep(spec, opt, b, dropout, lr, rec)).loss;
}

/** Steps whose loss may still be on its way back from the GPU while the next ones are queued. */
const LOSS_LAG = 3;

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
  const ownScaler = !spec.lossScale;
  const scaler = lossScaling(spec);
  if (scaler)
    spec.emit({
      type: 'log',
      level: 'info',
      message:
        `precision mixed: f16 matmul inputs, f32 accumulation; dynamic loss scale from ${scaler.initial} ` +
        `(halved on inf/NaN gradients, the step skipped; doubled after ${scaler.growthInterval} good steps)`,
    });
  const rec = stepRecording(spec, opt, (message) => spec.emit({ type: 'log', level: 'info', message }));
  if (start > 0) spec.emit({ type: 'resume', stage: spec.stage, epoch: start });
  const times = newStepTimes();
  const timed = async <T>(add: (ms: number) => void, work: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await work();
    } finally {
      add(performance.now() - t);
    }
  };
  const t0 = performance.now();
  try {
    for (let epoch = start; epoch < spec.epochs; epoch++) {
      const dropout = new Rng(spec.seed * 7919 + epoch);
      if (epoch > start) batches = epochBatches(epoch);
      let lossSum = 0;
      let skipped = 0;
      // Queued steps whose loss is still to come (a replayed step's loss is read back later).
      const pending: {
        loss: Promise<number>;
        scaled: Promise<ScaledStep> | null;
        i: number;
        step: number;
        lr: number;
        tokens: number;
      }[] = [];
      const settle = async (keep: number) => {
        while (pending.length > keep) {
          const p = pending.shift()!;
          const loss = await p.loss;
          const sc = p.scaled ? await p.scaled : null;
          if (!Number.isFinite(loss)) {
            const why = sc
              ? ' In mixed precision an activation beyond f16 range (65504) does this: try --precision fp32.'
              : '';
            throw new UserError(
              `${spec.stage}: the loss became ${loss} at epoch ${epoch + 1}, step ${p.i + 1}; ` +
                `stopped (the last good checkpoint is kept). Try a lower lr or a smaller clip_norm.${why}`,
            );
          }
          if (sc?.skipped) skipped++;
          lossSum += loss;
          tokensSeen += p.tokens;
          const elapsed = (Date.now() - started) / 1000;
          const done = p.step + 1 - start * stepsPerEpoch;
          spec.emit({
            type: 'step',
            stage: spec.stage,
            epoch: epoch + 1,
            epochs: spec.epochs,
            step: p.step + 1,
            steps: total,
            loss,
            lr: p.lr,
            tokensPerSecond: tokensSeen / Math.max(elapsed, 1e-9),
            etaSeconds: (elapsed / done) * (total - p.step - 1),
            ...(sc ? { lossScale: sc.scale, ...(sc.skipped ? { skipped: true } : {}) } : {}),
          });
        }
      };
      for (let i = 0; i < batches.length; i++) {
        if (spec.signal?.aborted) throw new CancelledError(`${spec.stage} cancelled in epoch ${epoch + 1}`);
        const prepare = spec.prepare;
        const b = prepare
          ? await timed(
              (ms) => (times.prepareMs += ms),
              () => prepare(batches[i]),
            )
          : batches[i];
        const step = epoch * stepsPerEpoch + i;
        const lr = spec.lr * lrFactor(step, total, warmup, spec.schedule);
        const tq = performance.now();
        const q = await queueTrainStep(spec, opt, b, dropout, lr, rec);
        times[q.ran].steps++;
        times[q.ran].ms += performance.now() - tq;
        pending.push({ loss: q.loss, scaled: q.scaled, i, step, lr, tokens: b.tokens });
        // Op by op the loss is already read back: its step event goes out now, so progress and a
        // cancel act on the step just run. Only replayed steps keep LOSS_LAG losses in flight.
        await settle(rec ? LOSS_LAG : 0);
        // Let IPC messages (cancel) in between steps.
        await new Promise((r) => setImmediate(r));
      }
      await settle(0);
      if (rec && epoch === spec.epochs - 1) spec.emit({ type: 'log', level: 'info', message: rec.recorder.summary() });
      const metrics = await timed(
        (ms) => (times.afterEpochMs += ms),
        () => spec.afterEpoch(epoch, lossSum / Math.max(1, batches.length), opt),
      );
      spec.emit({
        type: 'epoch',
        stage: spec.stage,
        epoch: epoch + 1,
        epochs: spec.epochs,
        metrics: {
          train_loss: lossSum / Math.max(1, batches.length),
          ...(scaler ? { skipped_steps: skipped } : {}),
          ...metrics,
        },
      });
    }
    times.totalMs = performance.now() - t0;
    const line = formatStepTimes(spec.stage, spec.epochs - start, times);
    if (line) spec.emit({ type: 'log', level: 'info', message: line });
  } finally {
    rec?.recorder.dispose();
    if (scaler && ownScaler) {
      scaler.dispose();
      spec.lossScale = undefined;
    }
  }
  return opt;
}

/**
 * Where a training run's time went: its steps by how they ran (a captured or op-by-op step's ms
 * is its own, read-back included; a replayed step's are the loop's time not counted elsewhere:
 * encoding, submitting and waiting for the GPU), the work before steps (spec.prepare: a teacher's
 * targets) and after each epoch (spec.afterEpoch: validation, checkpoints).
 */
export type StepTimes = Record<StepKind, { steps: number; ms: number }> & {
  prepareMs: number;
  afterEpochMs: number;
  totalMs: number;
};

export function newStepTimes(): StepTimes {
  const k = () => ({ steps: 0, ms: 0 });
  return { replayed: k(), captured: k(), opByOp: k(), prepareMs: 0, afterEpochMs: 0, totalMs: 0 };
}

/**
 * One line: "finetune: 2 epochs in 12.3 s: 400 steps 10.0 s (25.0 ms a step; 368 replayed 8.0 s,
 * 16 captured 1.2 s, 16 op by op 0.8 s), teacher targets 0.5 s, validation and checkpoints 1.8 s".
 * The steps' ms are what the others leave of the total; without replays, the op-by-op steps take
 * that rest. null: no step ran.
 */
export function formatStepTimes(stage: string, epochs: number, t: StepTimes): string | null {
  const steps = t.replayed.steps + t.captured.steps + t.opByOp.steps;
  if (steps === 0) return null;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const stepMs = Math.max(0, t.totalMs - t.prepareMs - t.afterEpochMs);
  const rest = Math.max(0, stepMs - t.captured.ms - (t.replayed.steps > 0 ? t.opByOp.ms : 0));
  const kinds: [StepKind, string, number][] = [
    ['replayed', 'replayed', rest],
    ['captured', 'captured', t.captured.ms],
    ['opByOp', 'op by op', t.replayed.steps > 0 ? t.opByOp.ms : rest],
  ];
  const parts = kinds.filter(([k]) => t[k].steps > 0).map(([k, name, ms]) => `${t[k].steps} ${name} ${s(ms)}`);
  const around = [
    ...(t.prepareMs > 0 ? [`teacher targets ${s(t.prepareMs)}`] : []),
    ...(t.afterEpochMs > 0 ? [`validation and checkpoints ${s(t.afterEpochMs)}`] : []),
  ];
  return (
    `${stage}: ${epochs} epoch${epochs === 1 ? '' : 's'} in ${s(t.totalMs)}: ${steps} steps ${s(stepMs)} ` +
    `(${(stepMs / steps).toFixed(1)} ms a step; ${parts.join(', ')})` +
    (around.length ? `, ${around.join(', ')}` : '')
  );
}
