// prune: vocabulary pruning, then transformer pruning (TextPruner's PipelinePruner order), of a
// checkpoint; writes the pruned checkpoint and <out>/prune-report.json.
// prune-sweep: prune + re-fine-tune + evaluate + analyze for several configs, one table.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encoderParams, flopsPerSequence, paramTree } from '../analyze/summary';
import type { PruneConfig, Settings, TransformerPruneConfig } from '../config/settings';
import { deepMerge } from '../config/settings';
import { TEXTPRUNER_DEFAULTS } from '../config/presets';
import { loadConfigFile } from '../config/validate';
import { readGaiicCsv, Row } from '../data/csv';
import { encodeRows, Example, makeBatches } from '../data/encode';
import { Rng } from '../data/rng';
import { COUNTS_FILE, type Vocab } from '../data/vocab';
import { UserError } from '../errors';
import { readJson, writeJsonAtomic } from '../io/atomic';
import { checkpointMB, loadCheckpoint, readConfig, saveCheckpoint } from '../io/checkpoint';
import { BertConfig, ffnPerLayer, hasClassifier, headsPerLayer, keptHeads } from '../model/config';
import { CLASSIFIER, MLM_PREFIX } from '../model/names';
import { disposeParams, Params } from '../model/params';
import { labelMatrix, predictProbs } from '../model/predict';
import { computeImportance, Importance, ImportanceTarget, referenceTargets } from '../prune/importance';
import { parseMasks } from '../prune/masks';
import { LayerReport, ModelStats, PruneReport, REPORT_FILE, reportTables, updateReportMetrics, writeReport } from '../prune/report';
import { checkTargets, iterativePrune, maskPrune, PruneIteration, TransformerPruneResult } from '../prune/transformer';
import { countCorpus, pruneVocabulary } from '../prune/vocabulary';
import { score } from '../train/metrics';
import { analyze, compareLatency } from './analyze';
import { log, StageContext } from './context';
import { runPaths } from './corpus';
import { evaluate } from './evaluate';
import { finetune } from './finetune';

export interface PruneStageOptions {
  model: string;
  config: PruneConfig;
  configFile?: string;
  out: string;
  /** Labeled or unlabeled GAIIC csv: importance data (labels needed only without use_logits) and,
   *  when labeled, the metric before / right after pruning. */
  dataFile: string;
  /** Corpus (one text a line): vocabulary counts, and importance data for importance_data 'corpus'. */
  corpusFile?: string;
  seed: number;
  /** The run's settings: gradual pruning (transformer.recovery_epochs) trains with their refinetune
   *  settings between steps, distilling from `model`. */
  settings?: Settings;
}

/**
 * The recover hook of gradual pruning: save the sliced model, re-fine-tune it for recovery_epochs
 * (refinetune settings, distilled from the unpruned model, on the labeled data file) and load the
 * best epoch back into `params`. The round's checkpoints live in <out>-recovery/ until the stage ends.
 */
function recoveryHook(o: PruneStageOptions, tc: TransformerPruneConfig, vocab: Vocab, ctx: StageContext) {
  const settings = o.settings;
  if (!settings) throw new Error('prune: recovery_epochs needs the run settings');
  const dir = `${o.out}-recovery`;
  return async (params: Params, cfg: BertConfig, it: PruneIteration): Promise<BertConfig> => {
    const sliced = path.join(dir, `iter-${it.iter}`);
    await saveCheckpoint(sliced, cfg, params, vocab);
    const before = stats(params, cfg, 0).encoder_params;
    log(ctx, `recovery after prune iteration ${it.iter}: ${tc.recovery_epochs} epochs of re-fine-tuning (${before} encoder params)`);
    const r = await finetune('', settings, ctx, {
      stage: 'prune',
      from: sliced,
      out: `${sliced}-best`,
      last: `${sliced}-last`,
      teacher: o.model,
      trainFile: o.dataFile,
      settings: { ...settings.refinetune, epochs: tc.recovery_epochs },
    });
    if (r.metrics.val_score !== undefined) it.recovered_val_score = r.metrics.val_score;
    // The trained tensors replace the old ones; an MLM head (which fine-tuning leaves out and head
    // or FFN pruning does not touch) is kept.
    const ck = loadCheckpoint(r.checkpoint);
    for (const [name, v] of ck.params) {
      params.get(name)?.dispose();
      params.set(name, v);
    }
    for (const [name, v] of params) {
      if (!ck.params.has(name) && !name.startsWith(MLM_PREFIX)) {
        v.dispose();
        params.delete(name);
      }
    }
    return ck.config;
  };
}

/** Sequence length and batch size of the FLOPs and latency figures (analyze's defaults). */
const STATS_T = 64;
const STATS_B = 32;

const statsSeqLen = (cfg: BertConfig) => Math.min(STATS_T, cfg.max_position_embeddings);

/** Size and FLOPs; latency is filled in afterwards, timing both models alternately. */
function stats(params: Params, cfg: BertConfig, mb: number): ModelStats {
  const tree = paramTree([...params].map(([n, v]) => [n, v.shape]));
  return { params: tree.params, encoder_params: encoderParams(tree), mb, flops: flopsPerSequence(cfg, statsSeqLen(cfg)), latency_ms: null };
}

/** Latency of the unpruned checkpoint and the pruned model, measured alternately (same load). */
function measureBoth(model: string, params: Params, cfg: BertConfig): [number, number] | null {
  if (!hasClassifier(cfg) || !params.has(CLASSIFIER.weight)) return null;
  const orig = loadCheckpoint(model);
  try {
    const T = Math.min(statsSeqLen(cfg), statsSeqLen(orig.config));
    const [a, b] = compareLatency([{ params: orig.params, cfg: orig.config }, { params, cfg }], STATS_B, T);
    return [a, b];
  } finally {
    disposeParams(orig.params);
  }
}

function scoreOf(params: Params, cfg: BertConfig, ex: Example[]): number | undefined {
  if (ex.length === 0 || !ex.every((e) => e.labels) || !params.has(CLASSIFIER.weight)) return undefined;
  return score(predictProbs(params, cfg, ex), labelMatrix(ex));
}

/** The rows importance is scored on: the data file, or the corpus for importance_data 'corpus'. */
function importanceRows(o: PruneStageOptions, tc: TransformerPruneConfig | undefined, dataRows: Row[]): Row[] {
  let rows = dataRows;
  if (tc?.importance_data === 'corpus' && o.corpusFile) {
    if (!tc.use_logits) throw new UserError(`${o.configFile ?? 'prune config'}: importance_data 'corpus' has no labels; it needs use_logits true`);
    rows = fs
      .readFileSync(o.corpusFile, 'utf8')
      .split('\n')
      .map((l, i) => ({ id: `corpus-${i + 1}`, tokens: l.trim().split(/\s+/).filter(Boolean).map(Number), labels: null, line: i + 1 }))
      .filter((r) => r.tokens.length > 0 && r.tokens.every((t) => Number.isSafeInteger(t) && t >= 0));
  }
  if (tc?.max_examples && rows.length > tc.max_examples) {
    // A seeded subset, in the original order.
    const pick = new Set(new Rng(o.seed).shuffle(rows.map((_, i) => i)).slice(0, tc.max_examples));
    rows = rows.filter((_, i) => pick.has(i));
  }
  return rows;
}

/** Vocabulary counts: from the corpus file when given, else the checkpoint's token_counts.json. */
function vocabCounts(o: PruneStageOptions, ck: ReturnType<typeof loadCheckpoint>): number[] {
  if (o.corpusFile) return countCorpus(o.corpusFile, ck.vocab);
  const file = path.join(o.model, COUNTS_FILE);
  if (!fs.existsSync(file) || ck.vocab.counts.every((c) => c === 0)) {
    throw new UserError(`${file}: vocabulary pruning needs the corpus token counts (written by corpus-vocab), or a corpus file`);
  }
  return ck.vocab.counts;
}

export async function pruneStage(o: PruneStageOptions, ctx: StageContext): Promise<{ metrics: Record<string, number>; checkpoint: string; report: string; reportData: PruneReport }> {
  const source = o.configFile ?? 'prune config';
  const tc = o.config.transformer;
  if (!tc && !o.config.vocabulary) throw new UserError(`${source}: nothing to prune (give 'transformer' and/or 'vocabulary')`);
  const ck = loadCheckpoint(o.model);
  let { params, vocab } = ck;
  let cfg = ck.config;
  try {
    // Impossible targets are refused before any work (scoring, importance) starts.
    if (tc) {
      if (!hasClassifier(cfg) || !params.has(CLASSIFIER.weight)) throw new UserError(`${o.model}: transformer pruning needs a fine-tuned classifier checkpoint`);
      if (tc.pruning_method === 'iterative') checkTargets(cfg, tc, source);
    }
    const maxLen = Math.min(cfg.max_len ?? 128, cfg.max_position_embeddings);
    const dataRows = readGaiicCsv(o.dataFile).rows;
    const before = stats(params, cfg, checkpointMB(o.model));
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
    report.metrics.before = scoreOf(params, cfg, encodeRows(dataRows, vocab, maxLen));

    // 1. Vocabulary.
    if (o.config.vocabulary) {
      const v = pruneVocabulary(params, cfg, vocab, vocabCounts(o, ck), o.config.vocabulary, source);
      cfg = v.cfg;
      vocab = v.vocab;
      report.vocabulary = { before: v.before, after: v.after, removed: v.removed };
      log(ctx, `vocabulary: kept ${v.after} of ${v.before} tokens (min_count ${o.config.vocabulary.min_count})${v.lmHead ? ', MLM head pruned too' : ''}`);
    }

    // 2. Transformer.
    const cfgBefore = cfg;
    let result: TransformerPruneResult | null = null;
    if (tc) {
      if (!hasClassifier(cfg) || !params.has(CLASSIFIER.weight)) throw new UserError(`${o.model}: transformer pruning needs a fine-tuned classifier checkpoint`);
      const rows = importanceRows(o, tc, dataRows);
      // Sorted by length so batches carry little padding; the order does not change the sums.
      const ex = encodeRows(rows, vocab, maxLen).sort((a, b) => a.ids.length - b.ids.length);
      const batches = makeBatches(ex, { batchSize: tc.batch_size });
      const unlabeled = rows.find((r) => r.labels === null);
      if (!tc.use_logits && unlabeled) {
        throw new UserError(`${o.dataFile}:${unlabeled.line}: row '${unlabeled.id}' has no labels, but use_logits is false (importance on the labels); use labeled data or use_logits true`);
      }
      const target: ImportanceTarget = tc.use_logits ? { kind: 'logits', reference: referenceTargets(params, cfg, batches) } : { kind: 'labels' };
      if (tc.pruning_method === 'iterative') {
        log(ctx, `pruning heads to ${tc.target_num_of_heads}/layer and FFN to ${tc.target_ffn_size}/layer in ${tc.n_iters} iterations on ${ex.length} examples`);
        const gradual = (tc.recovery_epochs ?? 0) > 0;
        if (gradual) log(ctx, `gradual pruning: ${tc.recovery_epochs} recovery epochs after each iteration but the last`);
        result = await iterativePrune(params, cfg, batches, target, tc, {
          signal: ctx.signal,
          recover: gradual ? recoveryHook(o, tc, vocab, ctx) : undefined,
          onIteration: (it, n) => log(ctx, `prune iteration ${it.iter}/${n}: heads ${it.heads_per_layer.join(' ')}, FFN ${it.ffn_per_layer.join(' ')}`),
        });
      } else {
        if (!tc.masks_file) throw new UserError(`${source}: transformer.masks_file is required when pruning_method is 'masks'`);
        const masks = parseMasks(readJson(tc.masks_file), tc.masks_file, {
          heads: headsPerLayer(cfg),
          ffn: ffnPerLayer(cfg),
          numHeads: cfg.num_attention_heads,
          presentHeads: [...Array(cfg.num_hidden_layers).keys()].map((l) => keptHeads(cfg, l)),
        });
        const importance = batches.length ? computeImportance(params, cfg, batches, target, { ffnEven: tc.ffn_even_masking }) : null;
        result = maskPrune(params, cfg, masks.head, masks.ffn, tc.keep_shape, importance);
      }
      cfg = result.cfg;
      report.iterations = result.iterations;
    }
    report.layers = layerReports(cfgBefore, result, tc?.keep_shape ?? false);
    fs.rmSync(`${o.out}-recovery`, { recursive: true, force: true }); // gradual pruning's rounds

    // 3. Save, measure, report.
    await saveCheckpoint(o.out, cfg, params, vocab);
    ctx.emit({ type: 'checkpoint', stage: 'prune', path: o.out, kind: 'final' });
    report.after = stats(params, cfg, checkpointMB(o.out));
    const latency = measureBoth(o.model, params, cfg);
    if (latency) [report.before.latency_ms, report.after.latency_ms] = latency;
    report.metrics.after_prune = scoreOf(params, cfg, encodeRows(dataRows, vocab, maxLen));
    const reportFile = path.join(o.out, REPORT_FILE);
    writeReport(reportFile, report);
    ctx.emit({ type: 'prune-report', path: reportFile, report });
    for (const t of reportTables(report)) ctx.emit(t);

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
    return { metrics, checkpoint: o.out, report: reportFile, reportData: report };
  } finally {
    disposeParams(params);
  }
}

/** Per layer: heads and FFN neurons before and kept. Physically pruned models say what they kept in
 *  their config (pruned_heads, intermediate_sizes), which also covers gradual pruning's slicing
 *  between steps; keep_shape models in the masks. */
function layerReports(cfg: BertConfig, r: TransformerPruneResult | null, keepShape: boolean): LayerReport[] {
  return [...Array(cfg.num_hidden_layers).keys()].map((l) => {
    const present = keptHeads(cfg, l);
    const ffnTotal = ffnPerLayer(cfg)[l];
    const headImportance = Array(cfg.num_attention_heads).fill(0);
    const imp: Importance | null = r?.importance ?? null;
    if (imp) present.forEach((h, i) => (headImportance[h] = imp.head[l][i]));
    let headsKept = present;
    let ffnKept = ffnTotal;
    if (r && keepShape) {
      headsKept = present.filter((_, i) => r.headMask[l][i] !== 0);
      ffnKept = r.ffnMask[l].reduce((a, b) => a + b, 0);
    } else if (r) {
      headsKept = keptHeads(r.cfg, l);
      ffnKept = ffnPerLayer(r.cfg)[l];
    }
    return {
      layer: l,
      heads_total: cfg.num_attention_heads,
      heads_before: present,
      heads_kept: headsKept,
      ffn_total: ffnTotal,
      ffn_kept: ffnKept,
      head_importance: imp ? headImportance : [],
      ffn_importance: imp ? imp.ffn[l] : [],
    };
  });
}

/**
 * A standalone prune config file (validated against prune.schema.json) completed from `defaults`
 * (the run's settings.prune): only the sections the file has are pruned; keys it leaves out come
 * from defaults, then from TextPruner's defaults. The targets have no TextPruner default.
 */
export function resolvePruneConfig(value: unknown, defaults: PruneConfig, source: string): PruneConfig {
  const v = value as { transformer?: Partial<TransformerPruneConfig>; vocabulary?: Partial<PruneConfig['vocabulary']> };
  const out: PruneConfig = {};
  if (v.transformer) {
    const t = deepMerge({ ...TEXTPRUNER_DEFAULTS, ...(defaults.transformer ?? {}) }, v.transformer) as Partial<TransformerPruneConfig>;
    for (const k of ['target_ffn_size', 'target_num_of_heads'] as const) {
      if (t[k] === undefined) throw new UserError(`${source}: /transformer: missing '${k}' (the run's settings have no default for it)`);
    }
    out.transformer = t as TransformerPruneConfig;
  }
  if (v.vocabulary) out.vocabulary = { min_count: 1, prune_lm_head: 'auto', ...(defaults.vocabulary ?? {}), ...v.vocabulary };
  return out;
}

export interface SweepRow {
  config: string;
  score: number;
  params: number;
  encoder_params: number;
  mb: number;
  latency_ms: number | null;
}

/** The name of a sweep entry: the config file's name without .prune.json / .json. */
const configName = (file: string) => path.basename(file).replace(/\.prune\.json$|\.json$/i, '');

/** The labeled file a sweep scores on: the run's test split when labeled, else the data file. */
function sweepEvalFile(run: string, dataFile: string): string {
  const test = runPaths(run).test;
  if (fs.existsSync(test) && readGaiicCsv(test).rows.every((r) => r.labels !== null)) return test;
  return dataFile;
}

export async function pruneSweep(
  o: { model: string; configs: string[]; run: string; dataFile: string; settings: Settings; teacher?: string; evalFile?: string },
  ctx: StageContext,
): Promise<{ rows: SweepRow[]; file: string }> {
  if (o.configs.length === 0) throw new UserError('prune-sweep: give at least one --configs file');
  const names = o.configs.map(configName);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UserError(`prune-sweep: two configs are named '${dup}'; rename one (results go to sweep/<name>)`);
  const configs = o.configs.map((f) => resolvePruneConfig(loadConfigFile('prune', f), o.settings.prune, f)); // all checked before any work
  const modelCfg = readConfig(o.model);
  configs.forEach((c, i) => c.transformer?.pruning_method === 'iterative' && checkTargets(modelCfg, c.transformer, o.configs[i]));
  const evalFile = o.evalFile ?? sweepEvalFile(o.run, o.dataFile);
  const dir = path.join(o.run, 'sweep');
  const corpus = fs.existsSync(runPaths(o.run).corpus) ? runPaths(o.run).corpus : undefined;
  log(ctx, `prune-sweep: ${o.configs.length} configs, scored on ${evalFile}`);

  const row = async (config: string, model: string): Promise<SweepRow> => {
    const ev = await evaluate(model, evalFile, ctx);
    const an = await analyze(model, ctx);
    return { config, score: ev.metrics.score, params: an.analysis.total_params, encoder_params: an.analysis.encoder_params, mb: an.analysis.total_mb, latency_ms: an.analysis.latency_ms_per_batch ?? null };
  };
  const rows: SweepRow[] = [await row('(unpruned)', o.model)];
  for (let i = 0; i < configs.length; i++) {
    const name = names[i];
    const pruned = path.join(dir, name);
    const refined = path.join(dir, `${name}-refinetune`);
    log(ctx, `prune-sweep ${i + 1}/${configs.length}: ${name}`);
    const p = await pruneStage({ model: o.model, config: configs[i], configFile: o.configs[i], out: pruned, dataFile: o.dataFile, corpusFile: corpus, seed: o.settings.seed, settings: o.settings }, ctx);
    await finetune(o.run, o.settings, ctx, { stage: 'refinetune', from: pruned, out: refined, last: `${refined}-last`, teacher: o.teacher });
    const r = await row(name, refined);
    updateReportMetrics(p.report, { after_refinetune: r.score });
    rows.push(r);
  }
  const file = path.join(dir, 'sweep.json');
  fs.mkdirSync(dir, { recursive: true });
  writeJsonAtomic(file, { eval_file: evalFile, backend: ctx.backend, rows });
  ctx.emit({
    type: 'table',
    title: `prune-sweep (score on ${path.basename(evalFile)}, latency on ${ctx.backend})`,
    columns: ['config', 'score', 'params', 'encoder params', 'MB', 'latency ms'],
    rows: rows.map((r) => [r.config, +r.score.toFixed(4), r.params, r.encoder_params, +r.mb.toFixed(3), r.latency_ms === null ? '' : +r.latency_ms.toFixed(2)]),
  });
  return { rows, file };
}
