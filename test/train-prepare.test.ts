// train()'s prepare hook: a batch's work outside the gradient tape, once a step. Distillation
// computes the teacher's logits there (train/classifier.ts), where it ran inside the loss: twice a
// step under FGM, its activations kept on the tape.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { Batch } from '../src/engine/data/encode';
import { Rng } from '../src/engine/data/rng';
import { bceWithLogits, classifierLoss, classify, toInputs } from '../src/engine/model/bert';
import { train } from '../src/engine/train/loop';
import { trainSpec } from './helpers/train';
import { hostBatch, snapshot } from './helpers/webgpu';
import { tinyModel } from './helpers/tiny';

type TBatch = Batch & { teacher?: Float32Array };

/** Two epochs of distilled training with FGM; the teacher's logits in the loss or in prepare. */
async function run(where: 'loss' | 'prepare') {
  tf.setBackend('cpu');
  const { cfg, params } = tinyModel(1);
  const teacher = tinyModel(7).params;
  const teacherLogits = (b: Batch) =>
    tf.tidy(() => classify(teacher, cfg, toInputs(b.ids, b.mask, b.B, b.T))) as tf.Tensor2D;
  const batches: TBatch[] = [hostBatch(5), hostBatch(6), hostBatch(7)];
  const calls = { prepare: 0, loss: 0, lossWithTargets: 0 };
  const spec = trainSpec({
    stage: 'refinetune',
    params,
    epochs: 2,
    batches: () => batches,
    fgmEpsilon: 0.5,
    prepare:
      where === 'prepare'
        ? async (b) => {
            calls.prepare++;
            const t = teacherLogits(b);
            const host = (await t.data()) as Float32Array;
            t.dispose();
            return { ...b, teacher: host } as TBatch;
          }
        : undefined,
    loss: (b: TBatch, dropout: Rng) => {
      calls.loss++;
      if (b.teacher) calls.lossWithTargets++;
      const logits = classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T), { dropout });
      const t = b.teacher ? tf.tensor2d(b.teacher, [b.B, 17]) : teacherLogits(b);
      const hard = classifierLoss(logits, tf.tensor2d(b.labels!, [b.B, 17]), false);
      return tf.add(tf.mul(hard, 0.5), tf.mul(bceWithLogits(logits, tf.sigmoid(t)), 0.5)) as tf.Scalar;
    },
  });
  const opt = await train(spec);
  const w = await snapshot(params);
  opt.dispose();
  for (const v of [...params.values(), ...teacher.values()]) v.dispose();
  return { w, calls };
}

describe('train: prepare', () => {
  it('runs once a step, outside the tape; the loss (twice under FGM) sees its batch; the same update', async () => {
    const inLoss = await run('loss');
    const prepared = await run('prepare');
    // 3 batches x 2 epochs: one prepare a step, two losses a step (clean and FGM's adversarial pass)
    expect(prepared.calls).toEqual({ prepare: 6, loss: 12, lossWithTargets: 12 });
    expect(inLoss.calls).toEqual({ prepare: 0, loss: 12, lossWithTargets: 0 });
    for (const [n, w] of inLoss.w) {
      const p = prepared.w.get(n)!;
      const worst = w.reduce((m, x, i) => Math.max(m, Math.abs(x - p[i])), 0);
      expect(worst, n).toBeLessThan(1e-5);
    }
  });
});
