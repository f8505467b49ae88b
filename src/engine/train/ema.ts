// Exponential moving average of the weights (Polyak averaging), as in timm's ModelEmaV2 and TF's
// ExponentialMovingAverage with num_updates: after every optimizer step
//   shadow <- d * shadow + (1 - d) * w,   d = min(decay, (1 + t) / (10 + t)),  t = steps so far,
// so the early average is not dominated by the random start. Validation and the saved best
// checkpoint use the averaged weights (swap in, use, swap back); training continues on the raw ones.
import * as tf from '@tensorflow/tfjs';
import { fusedEma, swapInPlace } from '../backend/webgpu-adamw';
import { webgpuActive } from '../backend/webgpu-kernels';
import type { Params } from '../model/params';

/** Prefix of the shadow weights among a resumable checkpoint's optimizer tensors. */
const EMA_PREFIX = 'ema.';

export class Ema {
  readonly shadow = new Map<string, tf.Variable>();

  /** Starts from the current weights, or from `saved` (a resumed run's shadow weights) where given. */
  constructor(
    readonly decay: number,
    params: Params,
    saved?: Map<string, tf.Tensor>,
  ) {
    if (!(decay > 0 && decay < 1)) throw new Error(`ema decay must be in (0, 1), got ${decay}`);
    for (const [name, w] of params) {
      const s = saved?.get(EMA_PREFIX + name);
      this.shadow.set(name, tf.variable(s && s.shape.join() === w.shape.join() ? s : w, false));
    }
  }

  /** The decay used at update number t (0-based). */
  decayAt(t: number): number {
    return Math.min(this.decay, (1 + t) / (10 + t));
  }

  /** Fold the current weights in; t = the number of optimizer steps taken before this one. */
  update(params: Params, t: number): void {
    const d = this.decayAt(t);
    if (webgpuActive()) {
      const pairs = [...this.shadow].flatMap(([name, shadow]) => {
        const w = params.get(name);
        return w ? [{ shadow, w }] : [];
      });
      fusedEma(pairs, d);
      return;
    }
    tf.tidy(() => {
      for (const [name, s] of this.shadow) {
        const w = params.get(name);
        if (w) s.assign(tf.add(tf.mul(s, d), tf.mul(w, 1 - d)));
      }
    });
  }

  /** Exchange the weights and the shadow weights (call twice to undo). */
  swap(params: Params): void {
    if (webgpuActive()) {
      // In place: the weights keep their buffers (a recorded training step names them).
      const pairs = [...this.shadow].flatMap(([name, b]) => {
        const a = params.get(name);
        return a ? [{ a, b }] : [];
      });
      swapInPlace(pairs);
      return;
    }
    for (const [name, s] of this.shadow) {
      const w = params.get(name);
      if (!w) continue;
      const tmp = tf.clone(w);
      w.assign(s);
      s.assign(tmp);
      tmp.dispose();
    }
  }

  /** Run fn with the averaged weights in place of the raw ones. */
  async withAveraged<T>(params: Params, fn: () => Promise<T> | T): Promise<T> {
    this.swap(params);
    try {
      return await fn();
    } finally {
      this.swap(params);
    }
  }

  /** The shadow weights as named tensors for a resumable checkpoint ("ema.<param>"). */
  tensors(): Map<string, tf.Tensor> {
    return new Map([...this.shadow].map(([k, t]) => [EMA_PREFIX + k, t]));
  }

  dispose(): void {
    for (const t of this.shadow.values()) t.dispose();
    this.shadow.clear();
  }
}
