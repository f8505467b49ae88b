// Layer-wise distillation (refinetune.distill_hidden): each layer of the pruned model learns to
// reproduce the hidden states of the teacher layer it was pruned from, as CoFiPruning does it.
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
// The teacher runs in inference mode (no dropout) inside every training step; its tokens come
// with the batch (its own vocabulary: a vocabulary-pruned student has other ids for the same rows).
import * as tf from '@tensorflow/tfjs';
import type { Row } from '../data/csv';
import { encodeRows } from '../data/encode';
import { UserError } from '../errors';
import { PRUNED_FROM_FILE, type Checkpoint, type PrunedFrom } from '../io/checkpoint';
import { encode, toInputs } from '../model/bert';
import type { BertConfig } from '../model/config';
import { disposeParams, type Params } from '../model/params';

export interface HiddenTeacher {
  /** The teacher's token ids of every training row (its vocabulary, cut like the student's). */
  rowIds: Int32Array[];
  /** The batch's teacher ids, [B * T], padded like the student's batch of the same rows (mask [B * T]). */
  batchIds(rows: number[], mask: Float32Array, B: number, T: number): Int32Array;
  /** distill_hidden x the layer-wise loss of one batch (see the header). */
  loss(
    student: tf.Tensor2D[],
    teacherIds: Int32Array,
    mask: Float32Array,
    B: number,
    T: number,
    types?: Int32Array | null,
  ): tf.Scalar;
  dispose(): void;
}

/**
 * The layer-wise teacher `t` (a loaded checkpoint, whose weights it takes over: dispose() or an
 * error frees them), with `from` the student's mapping onto it (its checkpoint folder's
 * pruned-from.json, read by the caller; null: one to one). A mapping that does not fit the teacher
 * is a UserError naming the file.
 */
export function hiddenTeacherOf(
  t: Checkpoint,
  studentDir: string,
  from: PrunedFrom | null,
  student: BertConfig,
  rows: Row[],
  maxLen: number,
  numLabels: number,
  weight: number,
): HiddenTeacher {
  const teacherDir = t.dir;
  const tc = t.config;
  let map = from;
  const where = `${studentDir}/${PRUNED_FROM_FILE}`;
  if (!map) {
    if (tc.num_hidden_layers !== student.num_hidden_layers || tc.hidden_size !== student.hidden_size) {
      disposeParams(t.params);
      throw new UserError(
        `${studentDir}: distill_hidden needs ${PRUNED_FROM_FILE} (which layers and hidden dimensions of the teacher ` +
          `${teacherDir} it kept); the model has ${student.num_hidden_layers} layers of ${student.hidden_size}, ` +
          `the teacher ${tc.num_hidden_layers} of ${tc.hidden_size}`,
      );
    }
    map = {
      layers: [...Array(student.num_hidden_layers).keys()],
      hidden: [...Array(student.hidden_size).keys()],
      teacher_layers: tc.num_hidden_layers,
      teacher_hidden: tc.hidden_size,
    };
  } else if (map.teacher_layers !== tc.num_hidden_layers || map.teacher_hidden !== tc.hidden_size) {
    disposeParams(t.params);
    throw new UserError(
      `${where}: maps onto a model of ${map.teacher_layers} layers of ${map.teacher_hidden}, ` +
        `but the teacher ${teacherDir} has ${tc.num_hidden_layers} of ${tc.hidden_size}`,
    );
  }
  const rowIds = encodeRows(rows, t.vocab, Math.min(maxLen, tc.max_position_embeddings), numLabels).map((e) =>
    Int32Array.from(e.ids),
  );
  const keep = tf.tensor1d(map.hidden, 'int32');
  const layers = map.layers;
  const params: Params = t.params;
  return {
    rowIds,
    batchIds(rows, mask, B, T) {
      const out = new Int32Array(B * T);
      rows.forEach((r, k) => {
        const ids = rowIds[r];
        let n = 0;
        for (let t = 0; t < T; t++) n += mask[k * T + t];
        if (ids.length !== n)
          throw new UserError(
            `distill_hidden: a training row has ${ids.length} tokens in the teacher's vocabulary ` +
              `and ${n} in the model's; ` +
              'layer-wise distillation needs the same tokenization (turn distill_hidden off for this model)',
          );
        out.set(ids, k * T);
      });
      return out;
    },
    loss(student, teacherIds, mask, B, T, types) {
      const states: tf.Tensor2D[] = [];
      encode(params, tc, toInputs(teacherIds, mask, B, T, types), { hiddenStates: states });
      const m = tf.reshape(tf.tensor2d(mask, [B, T]), [B * T, 1]);
      const denom =
        Math.max(
          1,
          mask.reduce((a, b) => a + b, 0),
        ) * keep.shape[0];
      let sum: tf.Tensor = tf.scalar(0);
      student.forEach((s, i) => {
        const target = tf.gather(states[layers[i]], keep, 1); // the teacher is no variable of the step
        sum = tf.add(sum, tf.sum(tf.mul(tf.square(tf.sub(s, target)), m)));
      });
      return tf.mul(sum, weight / (denom * Math.max(1, student.length))) as tf.Scalar;
    },
    dispose() {
      keep.dispose();
      disposeParams(params);
    },
  };
}
