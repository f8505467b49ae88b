// Analysis of a checkpoint (the analyze stage): the parameter tree (TextPruner-style summary),
// total MB, FLOPs per sequence and the measured inference latency / throughput of a checkpoint on
// the active backend.
import { encoderParams, flopsPerSequence, paramTree, ParamNode } from './summary';
import { Rng } from '../data/rng';
import { loadCheckpoint, readConfig, weightShapes } from '../io/checkpoint';
import { toInputs } from '../model/bert';
import { batchLogits } from '../model/predict';
import { BertConfig, ffnPerLayer, hasClassifier, headSize, headsPerLayer } from '../model/config';
import { disposeParams, Params } from '../model/params';
import type { StageContext } from '../context';
import { UserError } from '../errors';

export interface Analysis {
  model: string;
  backend: string;
  total_params: number;
  encoder_params: number;
  total_mb: number;
  flops_per_sequence: number; // at seq_len
  seq_len: number;
  latency_ms_per_batch?: number; // batch_size x seq_len, classification forward
  sequences_per_s?: number;
  /**
   * With a baseline checkpoint (analyze --baseline): its latency on the same batch, timed
   * alternately with this model's, and how many times faster this model ran.
   */
  baseline?: { model: string; latency_ms_per_batch: number; speedup: number };
  batch_size: number;
  num_layers: number;
  hidden_size: number;
  head_size: number; // one attention head's width (hidden / heads unless attention_head_size)
  heads_per_layer: number[];
  ffn_per_layer: number[];
  tree: ParamNode;
}

/**
 * Median wall time (ms) of a classification forward pass of B x T random tokens for each model,
 * timed alternately round by round so that all of them see the same machine load (on a shared
 * machine other processes come and go; timing one model after the other compares the load, not
 * the models).
 */
export async function compareLatency(
  models: { params: Params; cfg: BertConfig }[],
  B: number,
  T: number,
  rounds = 7,
): Promise<number[]> {
  const rng = new Rng(7);
  const V = Math.min(...models.map((m) => m.cfg.vocab_size));
  const ids = new Int32Array(B * T).map(() => 5 + rng.int(V - 5));
  const mask = new Float32Array(B * T).fill(1);
  const once = async (m: { params: Params; cfg: BertConfig }) => {
    const t0 = performance.now();
    await batchLogits(m.params, m.cfg, () => toInputs(ids, mask, B, T));
    return performance.now() - t0;
  };
  for (const m of models) await once(m); // warm-up (kernel setup, allocations)
  const times = models.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) for (const [i, m] of models.entries()) times[i].push(await once(m));
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(rounds / 2)]);
}

async function measureLatency(params: Params, cfg: BertConfig, B: number, T: number): Promise<number> {
  return (await compareLatency([{ params, cfg }], B, T))[0];
}

export async function analyze(
  model: string,
  ctx: StageContext,
  opts: { seqLen?: number; batchSize?: number; latency?: boolean; baseline?: string } = {},
): Promise<{ metrics: Record<string, number>; analysis: Analysis }> {
  const cfg = readConfig(model);
  const weights = weightShapes(model); // ours, or a HF folder's (.bin, sharded) under our names
  const tree = paramTree(weights.shapes);
  const baseCfg = opts.baseline !== undefined ? readConfig(opts.baseline) : null;
  const T = Math.min(opts.seqLen ?? 64, cfg.max_position_embeddings, baseCfg?.max_position_embeddings ?? Infinity);
  const B = opts.batchSize ?? 32;
  const a: Analysis = {
    model,
    backend: ctx.backend,
    total_params: tree.params,
    encoder_params: encoderParams(tree),
    total_mb: weights.bytes / 1e6,
    flops_per_sequence: flopsPerSequence(cfg, T),
    seq_len: T,
    batch_size: B,
    num_layers: cfg.num_hidden_layers,
    hidden_size: cfg.hidden_size,
    head_size: headSize(cfg),
    heads_per_layer: headsPerLayer(cfg),
    ffn_per_layer: ffnPerLayer(cfg),
    tree,
  };
  if (opts.baseline !== undefined && baseCfg && !hasClassifier(baseCfg))
    throw new UserError(`${opts.baseline}: the baseline has no classifier head to time`);
  if (opts.latency !== false && hasClassifier(cfg)) {
    const ck = loadCheckpoint(model);
    const base = opts.baseline !== undefined ? loadCheckpoint(opts.baseline) : null;
    try {
      if (base) {
        const [b, m] = await compareLatency(
          [
            { params: base.params, cfg: base.config },
            { params: ck.params, cfg: ck.config },
          ],
          B,
          T,
        );
        a.latency_ms_per_batch = m;
        a.baseline = { model: opts.baseline!, latency_ms_per_batch: b, speedup: b / m };
      } else a.latency_ms_per_batch = await measureLatency(ck.params, ck.config, B, T);
      a.sequences_per_s = (B * 1000) / a.latency_ms_per_batch;
    } finally {
      disposeParams(ck.params);
      if (base) disposeParams(base.params);
    }
  }
  ctx.emit({ type: 'params', path: model, summary: a });
  const metrics: Record<string, number> = {
    params: a.total_params,
    encoder_params: a.encoder_params,
    mb: a.total_mb,
    flops: a.flops_per_sequence,
  };
  if (a.latency_ms_per_batch !== undefined) metrics.latency_ms = a.latency_ms_per_batch;
  if (a.baseline) metrics.speedup = a.baseline.speedup;
  return { metrics, analysis: a };
}
