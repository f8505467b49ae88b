// Exponential moving average of the weights (Polyak averaging), as in timm's ModelEmaV2 and TF's
// ExponentialMovingAverage with num_updates: after every optimizer step
//   shadow <- d * shadow + (1 - d) * w,   d = min(decay, (1 + t) / (10 + t)),  t = steps so far,
// so the early average is not dominated by the random start. Validation and the saved best
// checkpoint use the averaged weights (swap in, use, swap back); training continues on the raw ones.
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../model/params';
import { ops } from '../ops';

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
    const pairs = [...this.shadow].flatMap(([name, shadow]) => {
      const w = params.get(name);
      return w ? [{ shadow, w }] : [];
    });
    ops().ema(pairs, d);
  }

  /** Exchange the weights and the shadow weights (call twice to undo). */
  swap(params: Params): void {
    // ops().swap: in place on webgpu, where the weights keep their buffers (a recorded step names them).
    const pairs = [...this.shadow].flatMap(([name, b]) => {
      const a = params.get(name);
      return a ? [{ a, b }] : [];
    });
    ops().swap(pairs);
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
