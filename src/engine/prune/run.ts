// Pruning a checkpoint (the prune stage): vocabulary pruning, then transformer pruning
// (TextPruner's PipelinePruner order); writes the pruned checkpoint and <out>/prune-report.json.
import * as path from 'node:path';
import { compareLatency } from '../analyze/model';
import { readRows, tokenizerIn } from '../data/rows';
import { encodeRows, Example, makeBatches } from '../data/encode';
import { UserError } from '../errors';
import { readJson } from '../io/atomic';
import { checkpointMB, loadCheckpoint, PRUNED_FROM_FILE, saveCheckpoint } from '../io/checkpoint';
import { checkReplaceable, makeScratch } from '../io/ownership';
import { carriedThresholdFiles } from '../io/thresholds';
import {
  BertConfig,
  ffnPerLayer,
  hasClassifier,
  headsPerLayer,
  isSingleLabel,
  keptHeads,
  labelNamesOf,
  numLabels,
} from '../model/config';
import { CLASSIFIER, MLM_BIAS } from '../model/names';
import { disposeParams, Params } from '../model/params';
import { labelMatrix, predictProbs } from '../model/predict';
import { log, type StageContext } from '../context';
import { allMetrics } from '../train/metrics';
import { computeImportance, ImportanceTarget, referenceTargets } from './importance';
import { replayPadding } from '../ops/record';
import { importanceRows, vocabCounts } from './inputs';
import type { PruneStageOptions } from './options';
import type { TransformerPruneConfig } from '../config/settings';
import { parseMasks } from './masks';
import { checkTransformerTargets } from './config';
import { recoveryDir, recoveryHook } from './recovery';
import {
  layerReports,
  pruneGoal,
  structuredLayerReports,
  structureReport,
  targetNotes,
  modelStats,
  PruneReport,
  REPORT_FILE,
  reportTables,
  STATS_B,
  statsSeqLen,
  transformersLoadable,
  writeReport,
} from './report';
import { iterativePrune, maskPrune, type PruneIteration, type TransformerPruneResult } from './transformer';
import { checkPruneTargets, isStructured, prunedFrom, structuredPrune, type StructuredResult } from './structured';
import { pruneVocabulary } from './vocabulary';

export type { PruneStageOptions } from './options';

/** Latency of the unpruned checkpoint and the pruned model, measured alternately (same load). */
async function measureBoth(model: string, params: Params, cfg: BertConfig): Promise<[number, number] | null> {
  if (!hasClassifier(cfg) || !params.has(CLASSIFIER.weight)) return null;
  const orig = loadCheckpoint(model);
  try {
    const T = Math.min(statsSeqLen(cfg), statsSeqLen(orig.config));
    const [a, b] = await compareLatency(
      [
        { params: orig.params, cfg: orig.config },
        { params, cfg },
      ],
      STATS_B,
      T,
    );
    return [a, b];
  } finally {
    disposeParams(orig.params);
  }
}

async function scoreOf(params: Params, cfg: BertConfig, ex: Example[]): Promise<number | undefined> {
  if (ex.length === 0 || !ex.every((e) => e.labels) || !params.has(CLASSIFIER.weight)) return undefined;
  const L = numLabels(cfg);
  return allMetrics(await predictProbs(params, cfg, ex), labelMatrix(ex, L), L, isSingleLabel(cfg)).score;
}

export async function pruneCheckpoint(
  o: PruneStageOptions,
  ctx: StageContext,
): Promise<{ metrics: Record<string, number>; checkpoint: string; report: string; reportData: PruneReport }> {
  const source = o.configFile ?? 'prune config';
  const tc = o.config.transformer && checkTransformerTargets(o.config.transformer, source);
  if (!tc && !o.config.vocabulary)
    throw new UserError(`${source}: nothing to prune (give 'transformer' and/or 'vocabulary')`);
  // The output (and gradual pruning's scratch folder) may be replaced only when bert-pruner made it.
  checkReplaceable(o.out, 'checkpoint', { force: o.force, flag: '--out' });
  const gradual = tc?.pruning_method === 'iterative' && (tc.recovery_epochs ?? 0) > 0;
  if (gradual) checkReplaceable(recoveryDir(o.out), 'scratch', { force: o.force });
  const ck = loadCheckpoint(o.model);
  const { params } = ck;
  let { vocab } = ck;
  let cfg = ck.config;
  let dropScratch: (() => void) | null = null;
  try {
    // Impossible targets are refused before any work (scoring, importance) starts.
    if (tc) {
      if (!hasClassifier(cfg) || !params.has(CLASSIFIER.weight))
        throw new UserError(`${o.model}: transformer pruning needs a fine-tuned classifier checkpoint`);
      checkPruneTargets(cfg, tc, source, params.has(MLM_BIAS));
    }
    const maxLen = Math.min(cfg.max_len ?? 128, cfg.max_position_embeddings);
    const dataRows = readRows(o.dataFile, {
      tokenizer: tokenizerIn(o.model),
      vocabHint: `${o.model} has none`,
      ...(hasClassifier(cfg) ? { labelSet: labelNamesOf(cfg) } : {}),
    }).rows;
    const before = modelStats(params, cfg, checkpointMB(o.model));
    const report: PruneReport = {
      model: o.model,
      backend: ctx.backend,
      seq_len: statsSeqLen(cfg),
      before,
      after: before,
      layers: [],
      iterations: [],
      metrics: {},
      config: o.config,
    };
    report.metrics.before = await scoreOf(params, cfg, encodeRows(dataRows, vocab, maxLen, numLabels(cfg)));

    // 1. Vocabulary.
    if (o.config.vocabulary) {
      const v = pruneVocabulary(params, cfg, vocab, vocabCounts(o, ck), o.config.vocabulary, source);
      cfg = v.cfg;
      vocab = v.vocab;
      report.vocabulary = { before: v.before, after: v.after, removed: v.removed };
      log(
        ctx,
        `vocabulary: kept ${v.after} of ${v.before} tokens (min_count ${o.config.vocabulary.min_count})` +
          `${v.lmHead ? ', MLM head pruned too' : ''}`,
      );
    }

    // 2. Transformer.
    const cfgBefore = cfg;
    let result: TransformerPruneResult | null = null;
    let structured: StructuredResult | null = null;
    if (tc) {
      if (!hasClassifier(cfg) || !params.has(CLASSIFIER.weight))
        throw new UserError(`${o.model}: transformer pruning needs a fine-tuned classifier checkpoint`);
      const rows = importanceRows(o, tc, dataRows);
      // Sorted by length so batches carry little padding; the order does not change the sums.
      const ex = encodeRows(rows, vocab, maxLen, numLabels(cfg)).sort((a, b) => a.ids.length - b.ids.length);
      const batches = makeBatches(ex, { batchSize: tc.batch_size, padTo: replayPadding(maxLen) }); // webgpu: few shapes
      const unlabeled = rows.find((r) => r.labels === null);
      if (!tc.use_logits && unlabeled) {
        throw new UserError(
          `${o.dataFile}:${unlabeled.line}: row '${unlabeled.id}' has no labels, ` +
            'but use_logits is false (importance on the labels); use labeled data or use_logits true',
        );
      }
      const target: ImportanceTarget = tc.use_logits
        ? { kind: 'logits', reference: await referenceTargets(params, cfg, batches) }
        : { kind: 'labels' };
      if (tc.pruning_method === 'iterative') {
        log(ctx, `pruning ${pruneGoal(tc, cfg)} in ${tc.n_iters} iterations on ${ex.length} examples`);
        if (gradual) {
          log(ctx, `gradual pruning: ${tc.recovery_epochs} recovery epochs after each iteration but the last`);
          dropScratch = makeScratch(recoveryDir(o.out), { force: o.force });
        }
        const how = {
          signal: ctx.signal,
          log: (line: string) => log(ctx, line),
          recover: gradual ? recoveryHook(o, tc, vocab, ctx) : undefined,
          onIteration: (it: PruneIteration, n: number) =>
            log(
              ctx,
              `prune iteration ${it.iter}/${n}: ` +
                (it.layers ? `layers ${it.layers.join(',')}, hidden ${it.hidden_size}, ` : '') +
                `heads ${it.heads_per_layer.join(' ')}, FFN ${it.ffn_per_layer.join(' ')}` +
                (it.encoder_params !== undefined ? `, ${it.encoder_params} encoder params` : '') +
                (it.model_params !== undefined ? `, ${it.model_params} in the model` : '') +
                (it.round_params ? ` (rounds: ${it.round_params.join(', ')})` : ''),
            ),
        };
        if (isStructured(tc)) {
          structured = await structuredPrune(params, cfg, batches, target, tc, how);
          result = structured;
        } else result = await iterativePrune(params, cfg, batches, target, tc, how);
      } else {
        result = await pruneByMasks(params, cfg, batches, target, tc, source);
      }
      cfg = result.cfg;
      report.iterations = result.iterations;
    }
    report.layers = structured
      ? structuredLayerReports(cfgBefore, structured)
      : layerReports(cfgBefore, result, tc?.keep_shape ?? false);
    if (structured) report.structure = structureReport(cfgBefore, structured);
    report.why = targetNotes(tc, report.layers);
    dropScratch?.(); // gradual pruning's rounds (only our marked scratch folder)
    dropScratch = null;

    // 3. Save, measure, report.
    const carried = carriedThresholdFiles(o.model, 'prune');
    // Where the layers and hidden dimensions came from: layer-wise distillation maps onto the teacher with it.
    if (structured)
      carried.json = { ...(carried.json ?? {}), [PRUNED_FROM_FILE]: prunedFrom(structured.provenance, cfgBefore) };
    await saveCheckpoint(o.out, cfg, params, vocab, carried);
    ctx.emit({ type: 'checkpoint', stage: 'prune', path: o.out, kind: 'final' });
    report.after = modelStats(params, cfg, checkpointMB(o.out));
    const latency = await measureBoth(o.model, params, cfg);
    if (latency) [report.before.latency_ms, report.after.latency_ms] = latency;
    report.metrics.after_prune = await scoreOf(params, cfg, encodeRows(dataRows, vocab, maxLen, numLabels(cfg)));
    report.transformers = transformersLoadable(cfg);
    if (!report.transformers.loadable) log(ctx, report.transformers.note, 'warn');
    const reportFile = path.join(o.out, REPORT_FILE);
    writeReport(reportFile, report);
    ctx.emit({ type: 'prune-report', path: reportFile, report });
    for (const t of reportTables(report)) ctx.emit(t);

    const metrics = stageMetrics(report);
    return { metrics, checkpoint: o.out, report: reportFile, reportData: report };
  } finally {
    dropScratch?.();
    disposeParams(params);
  }
}

/** transformer.pruning_method 'masks': remove what masks_file marks with 0. */
async function pruneByMasks(
  params: Params,
  cfg: BertConfig,
  batches: ReturnType<typeof makeBatches>,
  target: ImportanceTarget,
  tc: TransformerPruneConfig,
  source: string,
): Promise<TransformerPruneResult> {
  if (!tc.masks_file)
    throw new UserError(`${source}: transformer.masks_file is required when pruning_method is 'masks'`);
  const masks = parseMasks(readJson(tc.masks_file, 'masks'), tc.masks_file, {
    heads: headsPerLayer(cfg),
    ffn: ffnPerLayer(cfg),
    numHeads: cfg.num_attention_heads,
    presentHeads: [...Array(cfg.num_hidden_layers).keys()].map((l) => keptHeads(cfg, l)),
  });
  const importance = batches.length
    ? await computeImportance(params, cfg, batches, target, { ffnEven: tc.ffn_even_masking })
    : null;
  return maskPrune(params, cfg, masks.head, masks.ffn, tc.keep_shape, importance);
}

/** What run.json records of a prune stage: the pruned model's size, speed and score, and before. */
function stageMetrics(report: PruneReport): Record<string, number> {
  const metrics: Record<string, number> = {
    params: report.after.params,
    encoder_params: report.after.encoder_params,
    mb: report.after.mb,
    flops: report.after.flops,
    params_before: report.before.params,
    encoder_params_before: report.before.encoder_params,
  };
  if (report.after.latency_ms !== null) metrics.latency_ms = report.after.latency_ms;
  if (report.before.latency_ms !== null) metrics.latency_ms_before = report.before.latency_ms;
  if (report.metrics.before !== undefined) metrics.score_before = report.metrics.before;
  if (report.metrics.after_prune !== undefined) metrics.score_after_prune = report.metrics.after_prune;
  if (report.vocabulary) metrics.vocab_size = report.vocabulary.after;
  return metrics;
}
