// tf.customGrad over n tensor inputs, typed: the layers with a written-out backward pass (the
// webgpu programs of webgpu-ops.ts, LayerNorm of the host ops in ops/host.ts).
import * as tf from '@tensorflow/tfjs';

export type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

export function customOp(
  n: number,
  f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc },
): (...inputs: tf.Tensor[]) => tf.Tensor {
  const g = (...a: (tf.Tensor | tf.GradSaveFunc)[]) => f(a.slice(0, n) as tf.Tensor[], a[n] as tf.GradSaveFunc);
  return tf.customGrad(g as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor[]) => tf.Tensor;
}
