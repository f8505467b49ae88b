// Fine-tuning a classifier: the finetune stage (the reference's train.py), refinetune (its
// train_val.py, after pruning) and the recovery epochs of gradual pruning:
// one output per label of the model's label set (chooseLabels below): multi-label = sigmoids and
// BCE, single-label = softmax and cross-entropy; AdamW + schedule; optional FGM on the word
// embeddings; a seeded validation split of train keeps the best epoch by the problem's score
// (1 - mlogloss, or accuracy), without one the last; optional weight averaging (EMA) is what is
// validated and saved. refinetune may distil from a teacher (the unpruned fine-tuned model):
// multi-label loss = (1 - a) * BCE(y) + a * T^2 * BCE(sigmoid(t / T)) on logits / T; single-label
// the same with the softmax cross-entropy against softmax(t / T).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { FinetuneSettings, RefinetuneSettings, Settings } from '../config/settings';
import { readRows, tokenizerIn } from '../data/rows';
import { specialIdList } from '../data/vocab';
import { encodeRows, makeBatches, truncatedCount, type Batch } from '../data/encode';
import { Rng } from '../data/rng';
import { splitRows } from '../data/split';
import { UserError } from '../errors';
import { readJson, recoverDir } from '../io/atomic';
import {
  type Checkpoint,
  describeLoad,
  loadCheckpoint,
  loadTensorFile,
  PRUNED_FROM_FILE,
  readConfig,
  readPrunedFrom,
  saveCheckpoint,
  type ExtraFiles,
} from '../io/checkpoint';
import { checkMemory } from '../model/memory';
import { thresholdFiles, thresholdsFromValidation, type Thresholds } from '../io/thresholds';
import { bceWithLogits, classifierLoss, classify, softCrossEntropy, toInputs } from '../model/bert';
import {
  GAIIC_LABEL_SET,
  hasOwnLabels,
  hfDefaultNames,
  labelSetOf,
  numLabels,
  setClassification,
  type BertConfig,
  type LabelSet,
  type ProblemType,
} from '../model/config';
import { namesOfFile, type FileLabels } from '../data/labels';
import type { Row } from '../data/csv';
import { noteEpochsDone, updateStage } from '../io/run';
import { CLASSIFIER, CLASSIFIER_PREFIX, MLM_PREFIX, POOLER_PREFIX } from '../model/names';
import { weightShapes } from '../io/checkpoint';
import { disposeParams, initTensor, paramShapes, Params } from '../model/params';
import { labelMatrix, predictLogits, predictProbs, softmaxRows } from '../model/predict';
import { maskTokens } from '../data/masking';
import { maskForDistillation, stepTeacherOf, type StepTeacher } from './distill';
import { train } from './loop';
import { allMetrics } from './metrics';
import { Ema } from './ema';
import { AdamW, optimizerTensors, restoreOptimizer } from './optim';
import { log, StageContext } from '../context';
import { runPaths } from '../io/paths';
import { replayPadding } from '../ops/record';
import { OPTIMIZER_FILE, TRAIN_STATE, TrainState } from './pretrain';

export interface FinetuneOptions {
  /** 'prune': a recovery round of gradual pruning. */
  stage: 'finetune' | 'refinetune' | 'prune';
  from: string; // checkpoint to start from
  out: string; // best checkpoint
  last: string; // resumable checkpoint of the last epoch
  teacher?: string; // refinetune: distil from this checkpoint
  resume?: boolean;
  /** The run.json stage record to note completed epochs in (epochsDone); absent: none. */
  runKey?: string;
  /** Labeled training rows; default: the run's train split. */
  trainFile?: string;
  /** The stage's settings section (finetune's, refinetune's, a recovery round's), resolved by the caller. */
  settings: FinetuneSettings &
    Partial<Pick<RefinetuneSettings, 'distill_alpha' | 'distill_temperature' | 'distill_hidden' | 'distill_augment'>>;
}

/**
 * Keep the encoder, drop the MLM head, add a fresh pooler + classifier where missing. A fresh
 * classifier's bias starts at the log-odds of each label's training frequency, so the first
 * epochs learn features instead of the label prior (which BCE on rare labels otherwise spends
 * hundreds of steps on).
 */
function toClassifier(
  params: Params,
  cfg: ReturnType<typeof setClassification>,
  seed: number,
  labelFreq: Float64Array,
): Params {
  for (const name of [...params.keys()]) {
    if (name.startsWith(MLM_PREFIX)) {
      params.get(name)!.dispose();
      params.delete(name);
    }
  }
  const rng = new Rng(seed + 17);
  for (const [name, shape] of paramShapes(cfg, { mlm: false, classifier: true })) {
    if (params.has(name)) continue;
    const init =
      name === CLASSIFIER.bias
        ? tf.tensor1d(Array.from(labelFreq, (f) => Math.log(clampFreq(f) / (1 - clampFreq(f)))))
        : initTensor(name, shape, cfg, rng);
    params.set(name, tf.variable(init, true));
  }
  return params;
}

const clampFreq = (f: number) => Math.min(0.999, Math.max(0.001, f));

const PROBLEM_WORD: Record<ProblemType, string> = {
  multi_label_classification: 'multi-label',
  single_label_classification: 'single-label',
};

/** The label set of a fine-tuning run, and where its names and problem type came from. */
export interface LabelChoice extends LabelSet {
  namesFrom: string;
  problemFrom: string;
}

/**
 * The labels a classifier is trained for: the checkpoint's id2label when it has a trained
 * classifier or names its labels, else the training data's (names, or integer ids: the GAIIC
 * default set when all are below 17). The problem type: the setting unless 'auto', else the
 * checkpoint's problem_type when it names its labels, else the GAIIC csv format's multi-label, else
 * multi-label when any training row has zero or several labels and single-label otherwise.
 */
export function chooseLabels(
  cfg: BertConfig,
  known: string[] | null,
  file: { path: string; format: string; labels: FileLabels; rows: Row[] },
  setting: FinetuneSettings['problem_type'],
): LabelChoice {
  const names = known ?? namesOfFile(file.labels);
  const namesFrom = known ? 'from the checkpoint' : 'from the training data';
  let problem: ProblemType;
  let problemFrom: string;
  const uneven = file.rows.find((r) => (r.labels ?? []).length !== 1);
  if (setting && setting !== 'auto') [problem, problemFrom] = [setting, 'from the setting finetune.problem_type'];
  else if (known && cfg.problem_type) [problem, problemFrom] = [cfg.problem_type, "from the checkpoint's problem_type"];
  else if (file.format === 'gaiic') [problem, problemFrom] = [GAIIC_LABEL_SET.problem, 'the GAIIC format'];
  else if (uneven)
    [problem, problemFrom] = [
      'multi_label_classification',
      `from the training data: line ${uneven.line} has ${(uneven.labels ?? []).length} labels`,
    ];
  else [problem, problemFrom] = ['single_label_classification', 'from the training data: every row has one label'];
  return { names, problem, namesFrom, problemFrom };
}

/** "labels: 3 (neg, neu, pos), single-label (from the training data: every row has one label)" */
export function describeLabels(c: LabelChoice): string {
  const shown = c.names.length <= 20 ? c.names.join(', ') : `${c.names.slice(0, 20).join(', ')}, ...`;
  return `labels: ${c.names.length} (${shown}) ${c.namesFrom}, ${PROBLEM_WORD[c.problem]} (${c.problemFrom})`;
}

/** The outputs of the classifier a checkpoint's weights hold (trained, not to be initialised); null: none. */
function trainedClassifierSize(dir: string): number | null {
  try {
    return weightShapes(dir).shapes.find(([n]) => n === CLASSIFIER.weight)?.[1][0] ?? null;
  } catch {
    return null; // loading names what is wrong
  }
}

export async function finetuneClassifier(run: string, s: Settings, ctx: StageContext, o: FinetuneOptions) {
  const ft = o.settings;
  if (!fs.existsSync(o.from)) throw new UserError(`${o.from}: no such checkpoint; run the stage that makes it first`);
  // Before any data or weights are read: does training this model fit? (model/memory.ts)
  const shape = readConfig(o.from);
  checkMemory(
    shape,
    {
      mode: 'train',
      batch: ft.batch_size,
      seqLen: Math.min(s.model.max_len, shape.max_position_embeddings),
      extraCopies: ft.ema_decay > 0 ? 1 : 0,
    },
    ctx.backend,
    { shape: path.join(o.from, 'config.json'), batch: `settings: ${o.stage}.batch_size` },
  );
  const { trainFile, rows, labels } = readTrainingRows(run, o, shape, ctx);
  const L = labels.names.length;
  const single = labels.problem === 'single_label_classification';
  const { train: trRows, test: valRows } =
    ft.val_fraction > 0 ? splitRows(rows, ft.val_fraction, s.seed) : { train: rows, test: [] };

  let startEpoch = 0;
  let optimizer: AdamW | undefined;
  let best = -Infinity;
  if (o.resume) recoverDir(o.last); // killed while replacing it: the previous one is aside
  const resumeFrom = o.resume && fs.existsSync(path.join(o.last, TRAIN_STATE)) ? o.last : null;
  if (o.resume && !resumeFrom)
    log(ctx, `--resume: no epoch checkpoint in ${o.last} yet; starting from ${o.from}`, 'warn');
  const ck = loadCheckpoint(resumeFrom ?? o.from);
  const adapted = ck.report && describeLoad(ck.report); // a HF folder: heads initialised, tensors not used
  if (adapted) log(ctx, adapted);
  // A classifier the loader initialised (not in the weights) is made afresh for this label set.
  if (ck.report?.initialised.some((n) => n.startsWith(CLASSIFIER_PREFIX))) {
    for (const n of [CLASSIFIER.weight, CLASSIFIER.bias]) {
      ck.params.get(n)?.dispose();
      ck.params.delete(n);
    }
  }
  const cfg = setClassification(ck.config, labels);
  const labelFreq = new Float64Array(L);
  for (const r of trRows) for (const l of r.labels ?? []) labelFreq[l] += 1 / trRows.length;
  // softmax: the bias starts at log(frequency) (the class prior), as the sigmoids' at the log-odds:
  // log(g / (1 - g)) with g = f / (1 + f) is log(f)
  const params = toClassifier(ck.params, cfg, s.seed, single ? labelFreq.map((f) => f / (1 + f)) : labelFreq);
  const vocab = ck.vocab;
  const maxLen = Math.min(s.model.max_len, cfg.max_position_embeddings);
  const trainEx = encodeRows(trRows, vocab, maxLen, L);
  const valEx = encodeRows(valRows, vocab, maxLen, L);
  const cut = truncatedCount(trainEx) + truncatedCount(valEx);
  if (cut) log(ctx, `${trainFile}: ${cut} of ${rows.length} rows truncated to max_len ${maxLen}`);
  const valLabels = labelMatrix(valEx, L);
  const headMult = ft.head_lr_multiplier ?? 1;
  const lrMultiplier = (n: string) => (n.startsWith(CLASSIFIER_PREFIX) || n.startsWith(POOLER_PREFIX) ? headMult : 1);
  // A resumed run's optimizer file: the AdamW moments and, with EMA, the shadow weights.
  let saved: Map<string, tf.Tensor> | undefined;
  if (resumeFrom) {
    const st = readJson<TrainState>(path.join(o.last, TRAIN_STATE));
    saved = loadTensorFile(path.join(o.last, OPTIMIZER_FILE));
    optimizer = restoreOptimizer(new AdamW({ lr: ft.lr, weightDecay: ft.weight_decay, lrMultiplier }), saved, st.step);
    startEpoch = st.epochsDone;
    best = st.best ?? -Infinity;
    log(ctx, `resuming ${o.stage} after epoch ${startEpoch} from ${o.last}`);
  }

  // Distillation: the teacher's logits of every training example, computed once; the teacher runs
  // inside every step instead (train/distill.ts) layer-wise, mapped by the model's pruned-from.json
  // (which the checkpoints this stage saves carry on), and for augmented distillation, whose masked
  // rows it labels afresh. The teacher is loaded once for all.
  const alpha = o.teacher ? (ft.distill_alpha ?? 0) : 0;
  const T = ft.distill_temperature ?? 1;
  const beta = o.teacher ? (ft.distill_hidden ?? 0) : 0;
  const augment = alpha > 0 ? (ft.distill_augment ?? 0) : 0;
  // (config/settings.ts refuses mask_augment together with distill_augment)
  const maskAugment = augment > 0 ? 0 : (ft.mask_augment ?? 0);
  const prunedFrom = readPrunedFrom(o.from, cfg);
  const teacher = o.teacher && (alpha > 0 || beta > 0) ? loadCheckpoint(o.teacher) : null;
  let teacherLogits: Float32Array | null = null;
  let stepTeacher: StepTeacher | null = null;
  if (teacher) {
    try {
      if (numLabels(teacher.config) !== L)
        throw new UserError(`${teacher.dir}: the teacher has ${numLabels(teacher.config)} labels, the model ${L}`);
      if (alpha > 0 && augment === 0) teacherLogits = await teacherLogitsOf(teacher, trRows, maxLen, L);
    } catch (e) {
      disposeParams(teacher.params);
      throw e;
    }
    // The teacher of the steps takes the weights over; else they are done with.
    if (beta > 0 || augment > 0) stepTeacher = stepTeacherOf(teacher, o.from, prunedFrom, cfg, trRows, maxLen, L, beta);
    else disposeParams(teacher.params);
  }
  if (alpha > 0) log(ctx, `distilling from ${o.teacher} (alpha ${alpha}, temperature ${T})`);
  if (beta > 0) log(ctx, `layer-wise distillation from ${o.teacher} (weight ${beta})`);
  if (augment > 0) log(ctx, `augmented distillation: ${augment} of the tokens masked, labeled by the teacher`);
  if (maskAugment > 0) log(ctx, `token masking: ${maskAugment} of the tokens masked in every step, the labels kept`);
  const specials = new Set(specialIdList(vocab.special));

  // A batch's teacher targets (and the teacher's token ids) are host arrays of the batch (made with
  // the batch, not inside the loss), so that a recorded step on webgpu takes them with the batch
  // (backend/webgpu-record.ts).
  type TrainBatch = Batch & { teacher?: Float32Array; teacherIds?: Int32Array };
  // A batch's host targets from the teacher's logits: its softened probabilities (single-label),
  // else the logits themselves (the loss takes their sigmoid at the temperature).
  const targetsOf = (logits: Float32Array) => (single ? softmaxRows(logits, L, T) : logits);
  const withTeacher = (b0: Batch, rng: Rng): TrainBatch => {
    const b =
      maskAugment > 0
        ? { ...b0, ids: maskTokens(b0.ids, b0.mask, specials, vocab.special.mask, maskAugment, rng) }
        : b0;
    let out: TrainBatch = stepTeacher ? { ...b, teacherIds: stepTeacher.batchIds(b.rows, b.mask, b.B, b.T) } : b;
    if (augment > 0 && stepTeacher) {
      const ids = { student: vocab.special.mask, teacher: stepTeacher.maskId };
      out = { ...out, ...maskForDistillation(b.ids, out.teacherIds!, b.mask, specials, ids, augment, rng) };
    }
    if (!teacherLogits) return out;
    const tl = new Float32Array(b.B * L);
    b.rows.forEach((r, k) => tl.set(teacherLogits!.subarray(r * L, (r + 1) * L), k * L));
    return { ...out, teacher: targetsOf(tl) };
  };
  // Augmented distillation without the layer-wise term needs only the teacher's logits of the
  // masked batch: computed once a step, right before it and outside the gradient tape (the FGM
  // pass reuses them), not inside the loss, where it ran twice a step and its activations were
  // kept on the tape.
  const logitsOnly = augment > 0 && beta === 0 && stepTeacher !== null;
  const prepare = async (b: TrainBatch): Promise<TrainBatch> => {
    const logits = tf.tidy(() => stepTeacher!.run(b.teacherIds!, b.mask, b.B, b.T, b.types).logits);
    const tl = (await logits.data()) as Float32Array;
    logits.dispose();
    return { ...b, teacher: targetsOf(tl) };
  };
  const loss = (b: TrainBatch, dropout: Rng) => {
    const states: tf.Tensor2D[] | undefined = beta > 0 ? [] : undefined;
    const logits = classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T, b.types), { dropout, hiddenStates: states });
    let hard = classifierLoss(logits, tf.tensor2d(b.labels!, [b.B, L]), single);
    const ran =
      stepTeacher && b.teacherIds && !logitsOnly ? stepTeacher.run(b.teacherIds, b.mask, b.B, b.T, b.types) : null;
    if (ran && beta > 0) hard = tf.add(hard, stepTeacher!.hiddenLoss(states!, ran, b.mask)) as tf.Scalar;
    // the targets: the teacher's logits of this (masked) batch, else of the clean rows
    const t = augment > 0 && ran ? ran.logits : b.teacher ? tf.tensor2d(b.teacher, [b.B, L]) : null;
    if (!t) return hard;
    const kd = single
      ? tf.mul(softCrossEntropy(tf.div(logits, T), b.teacher ? t : tf.softmax(tf.div(t, T))), T * T)
      : tf.mul(bceWithLogits(tf.div(logits, T), tf.sigmoid(tf.div(t, T))), T * T);
    return tf.add(tf.mul(hard, 1 - alpha), tf.mul(kd, alpha)) as tf.Scalar;
  };

  let bestMetrics: Record<string, number> = {};
  // Without a validation split every epoch is the best so far: the last one is kept.
  const validateAndKeep = async (epoch: number): Promise<Record<string, number>> => {
    let val: Record<string, number> = {};
    let improved = valEx.length === 0;
    let thresholds: Thresholds | null = null; // tuned on the validation split, saved with the weights
    if (valEx.length > 0) {
      const probs = await predictProbs(params, cfg, valEx);
      const m = allMetrics(probs, valLabels, L, single);
      // decision thresholds only for multi-label; single-label decides by the argmax
      thresholds = single ? null : thresholdsFromValidation(probs, valLabels, cfg, o.stage);
      val = single
        ? { val_score: m.score, val_macro_f1: m.macro_f1!, val_logloss: m.mlogloss }
        : { val_score: m.score, val_micro_f1: m.micro_f1, val_macro_auc: m.macro_auc };
      improved = m.score > best;
      if (improved) best = m.score;
    }
    if (improved) {
      bestMetrics = { ...val, best_epoch: epoch + 1 };
      await saveCheckpoint(o.out, cfg, params, vocab, keepFrom(thresholdFiles(thresholds)));
      ctx.emit({ type: 'checkpoint', stage: o.stage, path: o.out, kind: 'best' });
    }
    return val;
  };
  const ema = ft.ema_decay > 0 ? new Ema(ft.ema_decay, params, saved) : undefined;
  if (ema && !resumeFrom) log(ctx, `weight averaging (EMA) with decay ${ft.ema_decay}`);
  // A pruned model keeps saying where its layers and hidden dimensions came from.
  const keepFrom = (files: ExtraFiles): ExtraFiles =>
    prunedFrom ? { ...files, json: { ...(files.json ?? {}), [PRUNED_FROM_FILE]: prunedFrom } } : files;
  let opt: Awaited<ReturnType<typeof train>>;
  const padTo = replayPadding(maxLen); // webgpu: lengths rounded up, so recorded steps meet few shapes
  try {
    opt = await train({
      stage: o.stage,
      params,
      epochs: ft.epochs,
      batches: (_e, rng) =>
        makeBatches(trainEx, { batchSize: ft.batch_size, rng, bucket: true, padTo }).map((b) => withTeacher(b, rng)),
      prepare: logitsOnly ? prepare : undefined,
      loss,
      lr: ft.lr,
      weightDecay: ft.weight_decay,
      warmupRatio: ft.warmup_ratio,
      schedule: ft.schedule,
      clipNorm: ft.clip_norm,
      seed: s.seed,
      lrMultiplier,
      fgmEpsilon: ft.fgm_epsilon,
      ema,
      startEpoch,
      optimizer,
      emit: ctx.emit,
      signal: ctx.signal,
      afterEpoch: async (epoch, _l, opt) => {
        // Validate and keep the best with the averaged weights when there are some.
        const val = await (ema ? ema.withAveraged(params, () => validateAndKeep(epoch)) : validateAndKeep(epoch));
        const state: TrainState = { epochsDone: epoch + 1, step: opt.step, best };
        const tensors = new Map([...optimizerTensors(opt), ...(ema ? ema.tensors() : [])]);
        await saveCheckpoint(o.last, cfg, params, vocab, {
          json: { [TRAIN_STATE]: state },
          tensors: { [OPTIMIZER_FILE]: tensors },
        });
        if (o.runKey) noteEpochsDone(run, o.runKey, epoch + 1);
        return val;
      },
    });
  } finally {
    stepTeacher?.dispose();
  }
  opt.dispose();
  ema?.dispose();
  disposeParams(params);
  if (!fs.existsSync(o.out)) throw new UserError(`${o.stage}: no epoch ran, so there is no checkpoint`);
  return { metrics: bestMetrics, checkpoint: o.out };
}

/**
 * The training rows and their label set: a trained classifier's or a config that names its
 * labels, else the data's (decided here and recorded in run.json under the stage's key).
 */
function readTrainingRows(run: string, o: FinetuneOptions, shape: BertConfig, ctx: StageContext) {
  const ft = o.settings;
  const trainFile = o.trainFile ?? runPaths(run).train;
  // The label set: a trained classifier's or a config that names its labels, else the data's.
  const headSize = trainedClassifierSize(o.from);
  // a classifier saved without id2label (HF omits it for 2 labels): HF's names, as the loader gives it
  if (headSize !== null && !shape.id2label)
    shape.id2label = Object.fromEntries(hfDefaultNames(headSize).map((n, i) => [`${i}`, n]));
  const known = headSize !== null || hasOwnLabels(shape) ? labelSetOf(shape).names : null;
  const read = readRows(trainFile, {
    requireLabels: true,
    progress: (m) => log(ctx, m),
    tokenizer: tokenizerIn(o.from),
    vocabHint: `${o.from} has none`,
    ...(known ? { labelSet: known } : {}),
  });
  const rows = read.rows;
  const labels = chooseLabels(shape, known, { path: trainFile, ...read }, ft.problem_type);
  log(ctx, describeLabels(labels));
  if (o.runKey) {
    const { names, problem, namesFrom, problemFrom } = labels;
    updateStage(run, o.runKey, {
      labels: { names, problem_type: problem, names_from: namesFrom, problem_from: problemFrom },
    });
  }
  return { trainFile, rows, labels };
}

/** The teacher's logits of every training row (its own vocabulary and length), for distillation. */
async function teacherLogitsOf(t: Checkpoint, rows: Row[], maxLen: number, L: number): Promise<Float32Array> {
  return predictLogits(
    t.params,
    t.config,
    encodeRows(rows, t.vocab, Math.min(maxLen, t.config.max_position_embeddings), L),
  );
}
