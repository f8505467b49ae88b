// Running the same computation on two tfjs backends (native kernels vs the cpu reference).
import * as tf from '@tensorflow/tfjs';

/** Run f on the given backend with fresh tensors from the same data; return the values. */
export function on(backend: string, f: () => tf.Tensor): { shape: number[]; values: Float32Array } {
  const prev = tf.getBackend();
  tf.setBackend(backend);
  try {
    const t = f();
    const r = { shape: t.shape, values: t.dataSync() as Float32Array };
    t.dispose();
    return r;
  } finally {
    tf.setBackend(prev);
  }
}
