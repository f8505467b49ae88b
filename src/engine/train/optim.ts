// AdamW (decoupled weight decay, as torch.optim.AdamW), global-norm gradient clipping and the
// learning-rate schedules of HF's get_*_schedule_with_warmup.
import * as tf from '@tensorflow/tfjs';
import { noDecay, Params } from '../model/params';
import { ops, type AdamWItem, type LossScaleState } from '../ops';

export type Schedule = 'linear' | 'cosine' | 'constant';

/** lr multiplier at step (0-based) of total: linear warmup, then linear / cosine decay to 0. */
export function lrFactor(step: number, total: number, warmup: number, schedule: Schedule): number {
  if (warmup > 0 && step < warmup) return (step + 1) / warmup;
  if (schedule === 'constant') return 1;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  if (schedule === 'cosine') return 0.5 * (1 + Math.cos(Math.PI * progress));
  return Math.max(0, 1 - progress);
}

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Multiplier of the lr for parameters whose name matches (e.g. a fresh classifier head). */
  lrMultiplier?: (name: string) => number;
}

export class AdamW {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  step = 0;
  constructor(readonly opt: AdamWOptions) {}

  /**
   * One update with gradients `grads` (name -> tensor) at learning rate lr, after clipping their
   * global norm to clipNorm (0: no clipping; grads may be replaced by their clipped copies).
   * The update itself is the backend's (ops().adamw: on webgpu one fused pass over all parameters).
   * lossScale (mixed precision): the grads carry that scale; a step with inf or NaN grads is skipped.
   */
  apply(params: Params, grads: Record<string, tf.Tensor>, lr: number, clipNorm = 0, lossScale?: LossScaleState): void {
    const { b1, b2, eps, c1, c2 } = this.nextStep();
    const items: AdamWItem[] = [];
    for (const name of Object.keys(grads)) {
      const w = params.get(name);
      if (!w) continue;
      const { m, v } = this.moments(name, w);
      const lrMult = this.opt.lrMultiplier?.(name) ?? 1;
      items.push({ name, w, m, v, lrMult, weightDecay: noDecay(name) ? 0 : this.opt.weightDecay });
    }
    ops().adamw(items, grads, { lr, beta1: b1, beta2: b2, eps, c1, c2, maxNorm: clipNorm, lossScale });
  }

  /**
   * Count one step; its betas, eps and bias corrections 1 - b^step (a recorded step's replay
   * takes them from here too, webgpu-record.ts).
   */
  nextStep(): { b1: number; b2: number; eps: number; c1: number; c2: number } {
    const b1 = this.opt.beta1 ?? 0.9;
    const b2 = this.opt.beta2 ?? 0.999;
    const eps = this.opt.eps ?? 1e-8;
    this.step++;
    return { b1, b2, eps, c1: 1 - b1 ** this.step, c2: 1 - b2 ** this.step };
  }

  /** The moments of a parameter, zeros at its first update. */
  private moments(name: string, w: tf.Tensor): { m: tf.Variable; v: tf.Variable } {
    let m = this.m.get(name);
    let v = this.v.get(name);
    if (!m || !v) {
      m = tf.tidy(() => tf.variable(tf.zerosLike(w), false));
      v = tf.tidy(() => tf.variable(tf.zerosLike(w), false));
      this.m.set(name, m);
      this.v.set(name, v);
    }
    return { m, v };
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** The optimizer's moments as named tensors ("m.<param>", "v.<param>") for a resumable checkpoint. */
export function optimizerTensors(opt: AdamW): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [k, t] of opt.m) out.set(`m.${k}`, t);
  for (const [k, t] of opt.v) out.set(`v.${k}`, t);
  return out;
}

export function restoreOptimizer(opt: AdamW, tensors: Map<string, tf.Tensor>, step: number): AdamW {
  for (const [k, t] of tensors) {
    const target = k.startsWith('m.') ? opt.m : k.startsWith('v.') ? opt.v : null;
    if (target) target.set(k.slice(2), tf.variable(t, false));
  }
  opt.step = step;
  return opt;
}
