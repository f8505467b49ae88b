// Transformer pruning (TextPruner's TransformerPruner): choose which heads and FFN neurons to keep,
// then remove them.
//
//   iterative   n_iters steps from the full size to the targets (target x layers in total). Each
//               step scores importance on the model with the units masked so far zeroed, then
//               masks the least important units down to that step's total. With pruning_order
//               'head-first' / 'ffn-first' there are 2 x n_iters steps that alternate between heads
//               and FFN neurons, each kind keeping its own schedule. Importance is recomputed
//               before every step but the first.
//               With a recover hook (recovery_epochs > 0: gradual pruning) every step but the
//               last removes what it masked and the smaller model is trained before the next
//               step scores importance; one-shot removal of 3/4 of a model leaves it near the
//               label prior, removing it in steps with training between keeps it close to the
//               unpruned model (docs/results.md).
//   masks       the masks come from a file.
//
// The working copy is masked by zeroing (keep_shape) during the iterations; the final masks are
// applied physically unless keep_shape is set.
import * as tf from '@tensorflow/tfjs';
import type { TransformerPruneConfig } from '../config/settings';
import type { Batch } from '../data/encode';
import { CancelledError, UserError } from '../errors';
import { BertConfig, ffnPerLayer, headsPerLayer } from '../model/config';
import type { Params } from '../model/params';
import type { PrunedFrom } from '../io/checkpoint';
import { applyMasks } from './apply';
import { computeImportance, Importance, ImportanceTarget } from './importance';
import { generateMask, Mask, maskCounts, schedule } from './masks';

export interface PruneIteration {
  iter: number; // 1-based
  heads_per_layer: number[];
  ffn_per_layer: number[];
  /** Gradual pruning: the validation score after this step's recovery training. */
  recovered_val_score?: number;
  /** Structured pruning (prune/structured.ts): the layers kept after the step (input model's ids). */
  layers?: number[];
  hidden_size?: number;
  encoder_params?: number;
  /** With a whole-model budget (target_model_params): the classification model's parameters after the step. */
  model_params?: number;
  /** A budget scored in several rounds (transformer.scoring_rounds): what it counts after each round. */
  round_params?: number[];
}

export interface TransformerPruneResult {
  cfg: BertConfig;
  headMask: Mask;
  ffnMask: Mask;
  /** Importance of the unpruned model (the first scoring); null for the masks method without data. */
  importance: Importance | null;
  iterations: PruneIteration[];
}

const ones = (sizes: number[]): Mask => sizes.map((n) => Array(n).fill(1));

/** Check the targets against the model; `source` names the config in the message. */
export function checkTargets(cfg: BertConfig, tc: TransformerPruneConfig, source: string): void {
  const L = cfg.num_hidden_layers;
  const targetHeads = tc.target_num_of_heads ?? 0;
  const targetFfn = tc.target_ffn_size ?? 0;
  const heads = headsPerLayer(cfg).reduce((a, b) => a + b, 0);
  const ffn = ffnPerLayer(cfg).reduce((a, b) => a + b, 0);
  if (targetHeads * L > heads) {
    throw new UserError(
      `${source}: transformer.target_num_of_heads ${targetHeads} is more than the model has ` +
        `(${heads} heads in ${L} layers, ${(heads / L).toFixed(2)} per layer)`,
    );
  }
  if (targetFfn * L > ffn) {
    throw new UserError(
      `${source}: transformer.target_ffn_size ${targetFfn} is more than the model has ` +
        `(${(ffn / L).toFixed(1)} neurons per layer on average)`,
    );
  }
  // Uneven FFN masking keeps whole groups of multiple_of neurons (with even masking it is ignored).
  const m = tc.multiple_of ?? 1;
  if (m > 1 && !tc.ffn_even_masking && targetFfn % m !== 0) {
    throw new UserError(
      `${source}: transformer.target_ffn_size ${targetFfn} ` +
        `is not a multiple of transformer.multiple_of ${m} ` +
        `(e.g. ${Math.max(m, Math.floor(targetFfn / m) * m)} or ${Math.ceil(targetFfn / m) * m})`,
    );
  }
}

/** Where the current model's layers and hidden dimensions came from (structured pruning). */
export type KeptFrom = PrunedFrom;

export interface IterativeOptions {
  signal?: AbortSignal;
  onIteration?: (it: PruneIteration, total: number) => void;
  /**
   * Gradual pruning: called after every step but the last with the model sliced to what is kept
   * (`cfg`); trains it, replacing the tensors in `params`, and returns its config.
   */
  recover?: (params: Params, cfg: BertConfig, it: PruneIteration, from?: KeptFrom) => Promise<BertConfig>;
  /** The stage's log (importance scoring's recordings on webgpu). */
  log?: (line: string) => void;
}

/**
 * Iterative pruning. `params` is modified: it ends masked (zeroed) and, unless keep_shape, sliced.
 * `batches` / `target` feed the importance loss. The masks returned are over the model the last
 * step started from (the input model unless o.recover sliced it in between).
 */
export async function iterativePrune(
  params: Params,
  cfg: BertConfig,
  batches: Batch[],
  target: ImportanceTarget,
  tc: TransformerPruneConfig,
  o: IterativeOptions = {},
): Promise<TransformerPruneResult> {
  if (o.recover && tc.keep_shape)
    throw new UserError(
      'transformer.recovery_epochs needs keep_shape false (the model is made smaller before each recovery)',
    );
  const L = cfg.num_hidden_layers;
  const heads = headsPerLayer(cfg);
  const ffn = ffnPerLayer(cfg);
  const headSched = schedule(
    heads.reduce((a, b) => a + b, 0),
    (tc.target_num_of_heads ?? 0) * L,
    tc.n_iters,
  );
  const ffnSched = schedule(
    ffn.reduce((a, b) => a + b, 0),
    (tc.target_ffn_size ?? 0) * L,
    tc.n_iters,
  );
  let headMask = ones(heads);
  let ffnMask = ones(ffn);
  let first: Importance | null = null;
  const iterations: PruneIteration[] = [];
  const steps = tc.pruning_order === null ? tc.n_iters : 2 * tc.n_iters;

  for (let i = 0; i < steps; i++) {
    if (o.signal?.aborted) throw new CancelledError(`prune cancelled in iteration ${i + 1}`);
    const imp = await computeImportance(params, cfg, batches, target, { ffnEven: tc.ffn_even_masking, log: o.log });
    first ??= imp;
    // Which kind this step prunes: both, or alternating heads and FFN.
    const doHeads = tc.pruning_order === null || (tc.pruning_order === 'head-first') === (i % 2 === 0);
    const doFfn = tc.pruning_order === null || !doHeads;
    const k = tc.pruning_order === null ? i : i >> 1; // step index within the kind's schedule
    if (doHeads) headMask = generateMask(imp.head, headSched[k], { even: tc.head_even_masking, prev: headMask });
    if (doFfn)
      ffnMask = generateMask(imp.ffn, ffnSched[k], {
        even: tc.ffn_even_masking,
        multipleOf: tc.multiple_of,
        prev: ffnMask,
      });
    applyMasks(params, cfg, headMask, ffnMask, true); // zero what is masked; shapes stay
    const it = { iter: i + 1, heads_per_layer: maskCounts(headMask), ffn_per_layer: maskCounts(ffnMask) };
    iterations.push(it);
    o.onIteration?.(it, steps);
    if (o.recover && i < steps - 1) {
      // Remove what is masked, train the smaller model, and go on with all of it unmasked.
      cfg = await o.recover(params, applyMasks(params, cfg, headMask, ffnMask, false), it);
      headMask = ones(headsPerLayer(cfg));
      ffnMask = ones(ffnPerLayer(cfg));
    }
  }
  const out = tc.keep_shape ? cfg : applyMasks(params, cfg, headMask, ffnMask, false);
  return { cfg: out, headMask, ffnMask, importance: first, iterations };
}

/** The masks method: apply the given masks (missing kinds keep everything). */
export function maskPrune(
  params: Params,
  cfg: BertConfig,
  head: Mask | null,
  ffn: Mask | null,
  keepShape: boolean,
  importance: Importance | null,
): TransformerPruneResult {
  const headMask = head ?? ones(headsPerLayer(cfg));
  const ffnMask = ffn ?? ones(ffnPerLayer(cfg));
  const out = applyMasks(params, cfg, headMask, ffnMask, keepShape);
  return {
    cfg: out,
    headMask,
    ffnMask,
    importance,
    iterations: [{ iter: 1, heads_per_layer: maskCounts(headMask), ffn_per_layer: maskCounts(ffnMask) }],
  };
}

/** A deep copy of the parameters (new variables). */
export function cloneParams(params: Params): Params {
  const out: Params = new Map();
  for (const [n, v] of params) out.set(n, tf.variable(v.clone(), true));
  return out;
}
