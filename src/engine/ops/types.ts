// The ops' interface (ops/index.ts chooses the set; host.ts and webgpu.ts implement it).
import type * as tf from '@tensorflow/tfjs';

export interface AttentionDims {
  B: number;
  T: number;
  /** heads and head size */
  A: number;
  D: number;
}

/** A dense layer's weight [out, in] (PyTorch's layout) and bias [out]. */
export interface Dense {
  w: tf.Tensor2D;
  b: tf.Tensor1D;
}

/** A parameter's AdamW update: the weight, its moments and gradient, and its own lr and decay. */
export interface AdamWItem {
  name: string;
  w: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  /** This parameter's learning-rate multiplier (its lr: the step's lr times this). */
  lrMult: number;
  weightDecay: number;
}

/** A dynamic loss scale's state on the device (train/loss-scale.ts keeps one). */
export interface LossScaleState {
  /** [1]: the scale. */
  scale: tf.Variable;
  /** [3]: good steps in a row, steps skipped in all, 1 where the last step was skipped. */
  stats: tf.Variable;
  /** Double the scale after this many good steps in a row; halve it after a skipped one, within these bounds. */
  growthInterval: number;
  minScale: number;
  maxScale: number;
}

/** A dropout to apply: its rate and the seed its mask is drawn from. */
export interface DropSpec {
  rate: number;
  seed: number;
}

/** The attention's dropout: its rate, and where its seed is drawn from when it is applied. */
export interface AttentionDrop {
  rate: number;
  seed: () => number;
}

export interface AdamWHyper {
  /** The step's learning rate (a recorded step takes it from the per-step scalars). */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Bias corrections 1 - beta^t. */
  c1: number;
  c2: number;
  /** Clip the global gradient norm to this (0: no clipping). */
  maxNorm: number;
  /**
   * Mixed precision: the gradients are the loss scale times the true ones. Divide by it, skip the
   * update where any gradient is inf or NaN, and update the scale (train/loss-scale.ts).
   */
  lossScale?: LossScaleState;
}

export interface Ops {
  /** Which set this is: 'host' or 'webgpu'. */
  readonly name: string;
  /** The matmuls' precision: mixed (f16 inputs, f32 sums) only on webgpu, where asked for. */
  precision(): 'fp32' | 'mixed';
  /** x [N, in] @ W^T [in, out] + b  (W is [out, in], PyTorch's layout). */
  linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D;
  /**
   * LayerNorm over the last axis, g and b its scale and shift; of x + residual where one is given
   * (a block's output added to its input, fused where the backend can), x first dropped out where
   * `drop` is given (this set's dropout with that rate and seed, fused where the backend can).
   */
  layerNorm(
    x: tf.Tensor2D,
    g: tf.Tensor1D,
    b: tf.Tensor1D,
    eps: number,
    residual?: tf.Tensor2D,
    drop?: DropSpec,
  ): tf.Tensor2D;
  /** gelu(linear(x)): the FFN's first half; exact GELU, as HF's "gelu". */
  linearGelu(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D;
  /**
   * BERT's embedding sum [N, H] of N = B T tokens: the word table's rows by ids [N], plus position
   * (n mod T)'s row, plus the token type table's row by types [N] (type 0 where null). ids and
   * types are constants.
   */
  embeddings(
    words: tf.Tensor2D,
    pos: tf.Tensor2D,
    type: tf.Tensor2D,
    ids: tf.Tensor1D,
    types: tf.Tensor1D | null,
    T: number,
  ): tf.Tensor2D;
  /**
   * Mean binary cross-entropy with logits over every element (targets in [0, 1]). The targets are
   * constants: no gradient flows to them on webgpu.
   */
  bceWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar;
  /**
   * Mean softmax cross-entropy of [n, V] logits against int targets [n], weighted by weights [n]
   * where given (rows of weight 0 count for nothing). Targets and weights are constants.
   */
  softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar;
  /** Inverted dropout; seed draws the mask (the same seed, the same mask). */
  dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T;
  /**
   * Multi-head self-attention of q, k, v [B*T, A*D] under mask [B, T] (1 = token): per head
   * softmax(q k^T / sqrt(D) + mask) [dropout] @ v, heads scaled by headMask [A] where given, back
   * to [B*T, A*D]. drop.seed: called once, only when rate > 0.
   */
  attention(
    q: tf.Tensor2D,
    k: tf.Tensor2D,
    v: tf.Tensor2D,
    mask: tf.Tensor2D,
    dims: AttentionDims,
    drop: AttentionDrop | null,
    headMask?: tf.Tensor1D | null,
  ): tf.Tensor2D;
  /**
   * Self-attention with its three projections: attention(linear(x, q.w, q.b), linear(x, k.w, k.b),
   * linear(x, v.w, v.b), ...), x [B*T, H]. The host sets compose it so; webgpu projects all three in
   * one matmul (composed too where a head mask is given).
   */
  selfAttention(
    x: tf.Tensor2D,
    q: Dense,
    k: Dense,
    v: Dense,
    mask: tf.Tensor2D,
    dims: AttentionDims,
    drop: AttentionDrop | null,
    headMask?: tf.Tensor1D | null,
  ): tf.Tensor2D;
  /**
   * One AdamW step of every item, in place, after clipping the gradients' global norm (grads:
   * name -> gradient; the host set may replace entries by their clipped copies, which the caller
   * then disposes).
   */
  adamw(items: AdamWItem[], grads: Record<string, tf.Tensor>, h: AdamWHyper): void;
  /** shadow <- d shadow + (1 - d) w for every pair, in place. */
  ema(pairs: { shadow: tf.Variable; w: tf.Tensor }[], d: number): void;
  /** Exchange a and b of every pair (the weights keep their buffers on webgpu: a recorded step names them). */
  swap(pairs: { a: tf.Variable; b: tf.Variable }[]): void;
  /** v <- v + s r, in place (FGM's perturbation of the embeddings). */
  addScaled(v: tf.Variable, r: tf.Tensor, s: number): void;
  /** Throws (a one-line UserError) once the device reported an error; called after read-backs. */
  check(): void;
  /** The largest buffer one tensor may be, in bytes (null: no limit besides memory). */
  maxBufferBytes(): number | null;
}
