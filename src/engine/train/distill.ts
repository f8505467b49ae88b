// Distillation from the unpruned model inside every training step (train/classifier.ts): the
// teacher runs on the step's batch, in inference mode (no dropout), when the step needs more of it
// than its logits of the clean training rows (which are computed once, before training):
//
//   layer-wise    (refinetune.distill_hidden) each layer of the pruned model learns to reproduce
//                 the hidden states of the teacher layer it was pruned from, as CoFiPruning does it
//   augmented     (refinetune.distill_augment) the batch's tokens are masked at random, the same
//                 positions for both models, and the teacher's logits of the masked rows are the
//                 targets: new examples every epoch, labeled by the teacher (as TinyBERT augments
//                 its distillation data), for a small model that otherwise sees 6,400 rows again
//
//   mapping   from pruned-from.json, written by the prune stage: layer i of the student was teacher
//             layer layers[i]; its hidden dimension j was teacher dimension hidden[j]. A student
//             with the teacher's own layer count and hidden size and no such file maps one to one.
//   loss      distill_hidden x the mean over student layers of the squared error between the
//             student's layer output and the teacher's, compared on the teacher's kept hidden
//             dimensions (no learned projection: the student's dimensions ARE a subset of the
//             teacher's, so comparing them directly keeps the student in the teacher's basis),
//             averaged over the real (unpadded) tokens and the dimensions
//
// The teacher's tokens come with the batch (its own vocabulary: a vocabulary-pruned student has
// other ids for the same rows).
import * as tf from '@tensorflow/tfjs';
import type { Row } from '../data/csv';
import { encodeRows } from '../data/encode';
import { pickTokens } from '../data/masking';
import { UserError } from '../errors';
import { PRUNED_FROM_FILE, type Checkpoint, type PrunedFrom } from '../io/checkpoint';
import { classify, toInputs } from '../model/bert';
import type { BertConfig } from '../model/config';
import { disposeParams, type Params } from '../model/params';
import type { Rng } from '../data/rng';

export interface StepTeacher {
  /** The teacher's token ids of every training row (its vocabulary, cut like the student's). */
  rowIds: Int32Array[];
  /** The teacher's [MASK] id (augmented distillation masks the same positions in both vocabularies). */
  maskId: number;
  /** The batch's teacher ids, [B * T], padded like the student's batch of the same rows (mask [B * T]). */
  batchIds(rows: number[], mask: Float32Array, B: number, T: number): Int32Array;
  /** The teacher on a batch: its logits [B, labels] and, when layer-wise, its layers' outputs. */
  run(teacherIds: Int32Array, mask: Float32Array, B: number, T: number, types?: Int32Array | null): TeacherOutput;
  /** distill_hidden x the layer-wise loss of one batch against the teacher's states (see the header); 0 when off. */
  hiddenLoss(student: tf.Tensor2D[], teacher: TeacherOutput, mask: Float32Array): tf.Scalar;
  dispose(): void;
}

export interface TeacherOutput {
  logits: tf.Tensor2D;
  states: tf.Tensor2D[];
}

/**
 * The teacher `t` of a training run's steps (a loaded checkpoint, whose weights it takes over:
 * dispose() or an error frees them). Layer-wise (`weight` > 0) with `from` the student's mapping
 * onto it (its checkpoint folder's pruned-from.json, read by the caller; null: one to one). A
 * mapping that does not fit the teacher is a UserError naming the folder or file (the caller has
 * checked that the teacher has the model's labels).
 */
export function stepTeacherOf(
  t: Checkpoint,
  studentDir: string,
  from: PrunedFrom | null,
  student: BertConfig,
  rows: Row[],
  maxLen: number,
  numLabels: number,
  weight: number,
): StepTeacher {
  const teacherDir = t.dir;
  const tc = t.config;
  const refuse = (message: string): never => {
    disposeParams(t.params);
    throw new UserError(message);
  };
  let map = from;
  const where = `${studentDir}/${PRUNED_FROM_FILE}`;
  if (weight > 0 && !map) {
    if (tc.num_hidden_layers !== student.num_hidden_layers || tc.hidden_size !== student.hidden_size)
      refuse(
        `${studentDir}: distill_hidden needs ${PRUNED_FROM_FILE} (which layers and hidden dimensions of the teacher ` +
          `${teacherDir} it kept); the model has ${student.num_hidden_layers} layers of ${student.hidden_size}, ` +
          `the teacher ${tc.num_hidden_layers} of ${tc.hidden_size}`,
      );
    map = {
      layers: [...Array(student.num_hidden_layers).keys()],
      hidden: [...Array(student.hidden_size).keys()],
      teacher_layers: tc.num_hidden_layers,
      teacher_hidden: tc.hidden_size,
    };
  } else if (
    weight > 0 &&
    map &&
    (map.teacher_layers !== tc.num_hidden_layers || map.teacher_hidden !== tc.hidden_size)
  ) {
    refuse(
      `${where}: maps onto a model of ${map.teacher_layers} layers of ${map.teacher_hidden}, ` +
        `but the teacher ${teacherDir} has ${tc.num_hidden_layers} of ${tc.hidden_size}`,
    );
  }
  const rowIds = encodeRows(rows, t.vocab, Math.min(maxLen, tc.max_position_embeddings), numLabels).map((e) =>
    Int32Array.from(e.ids),
  );
  const keep = weight > 0 ? tf.tensor1d(map!.hidden, 'int32') : null;
  const layers = map?.layers ?? [];
  const params: Params = t.params;
  return {
    rowIds,
    maskId: t.vocab.special.mask,
    batchIds(rows, mask, B, T) {
      const out = new Int32Array(B * T);
      rows.forEach((r, k) => {
        const ids = rowIds[r];
        let n = 0;
        for (let t = 0; t < T; t++) n += mask[k * T + t];
        if (ids.length !== n)
          throw new UserError(
            `distillation: a training row has ${ids.length} tokens in the teacher's vocabulary ` +
              `and ${n} in the model's; ` +
              'distill_hidden and distill_augment need the same tokenization (turn them off for this model)',
          );
        out.set(ids, k * T);
      });
      return out;
    },
    run(teacherIds, mask, B, T, types) {
      const states: tf.Tensor2D[] = [];
      // the teacher is no variable of the step: no gradient flows into it
      const logits = classify(params, tc, toInputs(teacherIds, mask, B, T, types), {
        hiddenStates: keep ? states : undefined,
      });
      return { logits, states };
    },
    hiddenLoss(student, teacher, mask) {
      if (!keep) return tf.scalar(0);
      const m = tf.reshape(tf.tensor1d(mask), [mask.length, 1]);
      const denom =
        Math.max(
          1,
          mask.reduce((a, b) => a + b, 0),
        ) * keep.shape[0];
      let sum: tf.Tensor = tf.scalar(0);
      student.forEach((s, i) => {
        const target = tf.gather(teacher.states[layers[i]], keep, 1);
        sum = tf.add(sum, tf.sum(tf.mul(tf.square(tf.sub(s, target)), m)));
      });
      return tf.mul(sum, weight / (denom * Math.max(1, student.length))) as tf.Scalar;
    },
    dispose() {
      keep?.dispose();
      disposeParams(params);
    },
  };
}

/**
 * Augmented distillation's corruption of a batch: each real, non-special token of the student's
 * ids is masked with probability `prob` (data/masking.ts pickTokens), in the student's ids with its
 * [MASK] and at the same position in the teacher's ids with the teacher's. Returns new arrays.
 */
export function maskForDistillation(
  ids: Int32Array,
  teacherIds: Int32Array,
  mask: Float32Array,
  specials: ReadonlySet<number>,
  ids2: { student: number; teacher: number },
  prob: number,
  rng: Rng,
): { ids: Int32Array; teacherIds: Int32Array } {
  const s = ids.slice();
  const t = teacherIds.slice();
  for (const i of pickTokens(ids, mask, specials, prob, rng)) {
    s[i] = ids2.student;
    t[i] = ids2.teacher;
  }
  return { ids: s, teacherIds: t };
}
