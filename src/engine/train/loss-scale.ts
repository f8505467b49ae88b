// Dynamic loss scaling, for mixed precision (--precision mixed: the matmuls take their inputs in
// f16, where a gradient under 2^-24 is 0 and one over 65504 overflows). The loss is multiplied by
// the scale S before the backward pass, so every gradient is S times the true one; the optimizer's
// kernel (ops().adamw with lossScale) divides by S and, where any gradient is inf or NaN, skips
// the whole update (weights and moments unchanged); then the scale is updated on the device:
// halved after a skipped step, doubled after `growthInterval` good steps in a row (as PyTorch's
// GradScaler, whose defaults these are). The scale and the counts are variables updated in place,
// so a recorded step (backend/webgpu-record.ts) replays all of it; the host learns of a skipped
// step with the loss read-back: the step's output is [loss, scale, good, skipped total, skipped].
import * as tf from '@tensorflow/tfjs';
import type { LossScaleState } from '../ops/types';

export const INIT_SCALE = 2 ** 15;
export const GROWTH_INTERVAL = 2000;
export const MIN_SCALE = 2 ** -14;
export const MAX_SCALE = 2 ** 24;

/** What a mixed-precision step's read-back says besides the loss. */
export interface ScaledStep {
  loss: number;
  /** The scale after the step (the next step's). */
  scale: number;
  /** The step's update was skipped (inf or NaN gradients). */
  skipped: boolean;
  /** Steps skipped since the scaler was made. */
  skippedTotal: number;
}

export class LossScaler implements LossScaleState {
  readonly scale: tf.Variable;
  readonly stats: tf.Variable;
  readonly growthInterval: number;
  /** The scale it started from. */
  readonly initial: number;
  readonly minScale = MIN_SCALE;
  readonly maxScale = MAX_SCALE;

  constructor(o: { init?: number; growthInterval?: number } = {}) {
    this.initial = o.init ?? INIT_SCALE;
    this.scale = tf.tidy(() => tf.variable(tf.tensor1d([this.initial]), false));
    this.stats = tf.tidy(() => tf.variable(tf.zeros([3]), false));
    this.growthInterval = o.growthInterval ?? GROWTH_INTERVAL;
  }

  /** loss * S (inside the gradient tape). */
  scaled(loss: tf.Scalar): tf.Scalar {
    return tf.sum(tf.mul(tf.reshape(loss, [1]), this.scale));
  }

  /** A scaled loss divided by S again (before the step updates S). */
  unscaled(value: tf.Scalar): tf.Scalar {
    return tf.tidy(() => tf.sum(tf.div(tf.reshape(value, [1]), this.scale)));
  }

  /** The step's output, read back after its update: [loss, scale, good, skipped total, skipped]. */
  output(loss: tf.Scalar): tf.Tensor1D {
    return tf.tidy(() => tf.concat([tf.reshape(loss, [1]), this.scale, this.stats]) as tf.Tensor1D);
  }

  /** The read-back of output(). */
  static read(a: ArrayLike<number>): ScaledStep {
    return { loss: a[0], scale: a[1], skipped: a[4] > 0, skippedTotal: a[3] };
  }

  /** The variables a recorded step names (their buffers must not change). */
  variables(): tf.Variable[] {
    return [this.scale, this.stats];
  }

  dispose(): void {
    this.scale.dispose();
    this.stats.dispose();
  }
}
