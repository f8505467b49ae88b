// prune-sweep: prune + re-fine-tune + evaluate + analyze for several configs, one table.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyze } from '../analyze/model';
import type { Settings } from '../config/settings';
import { loadConfigFile } from '../config/validate';
import { readRows, tokenizerIn } from '../data/rows';
import { UserError } from '../errors';
import { writeJsonAtomic } from '../io/atomic';
import { readConfig } from '../io/checkpoint';
import { runPaths } from '../io/paths';
import type { EngineEvent } from '../protocol';
import { resolvePruneConfig } from '../prune/config';
import { updateReportMetrics } from '../prune/report';
import { pruneCheckpoint } from '../prune/run';
import { checkPruneTargets } from '../prune/structured';
import { compareWithBaseline, structuresLabel, UNPRUNED_STRUCTURES } from '../prune/structures';
import { finetuneClassifier } from '../train/classifier';
import { evaluateCheckpoint } from '../train/evaluate';
import { existing } from './checks';
import { log, recordStage, StageContext } from './context';
import type { StageRun } from './registry';

export interface SweepRow {
  config: string;
  /** What the config prunes ('heads+FFN', 'heads+FFN+layers+hidden', 'vocabulary'; 'none' unpruned). */
  structures: string;
  score: number;
  params: number;
  encoder_params: number;
  /** encoder_params as a fraction of the unpruned model's (the percentage actually reached). */
  encoder_kept: number;
  mb: number;
  latency_ms: number | null;
  /**
   * For a row pruning more than heads+FFN: the heads+FFN row with the fewest encoder parameters
   * that has at least as many as this one, and this row's score minus its score
   * (prune/structures.ts compareWithBaseline). Absent when there is none.
   */
  vs_heads_ffn?: { config: string; score_delta: number; encoder_params_ratio: number };
  /**
   * The same against the smallest heads+FFN row with at least as many parameters in the whole
   * model (embeddings, pooler and classifier too: what is shipped). A smaller hidden size shrinks
   * those as well, which the encoder count leaves out.
   */
  vs_heads_ffn_model?: { config: string; score_delta: number; params_ratio: number };
}

/** The name of a sweep entry: the config file's name without .prune.json / .json. */
const configName = (file: string) => path.basename(file).replace(/\.prune\.json$|\.json$/i, '');

/** The labeled file a sweep scores on: the run's test split when labeled, else the data file. */
function sweepEvalFile(run: string, dataFile: string): string {
  const test = runPaths(run).test;
  if (
    fs.existsSync(test) &&
    readRows(test, { tokenizer: tokenizerIn(runPaths(run).vocab) }).rows.every((r) => r.labels !== null)
  )
    return test;
  return dataFile;
}

export async function pruneSweep(
  o: {
    model: string;
    configs: string[];
    run: string;
    dataFile: string;
    settings: Settings;
    teacher?: string;
    evalFile?: string;
  },
  ctx: StageContext,
): Promise<{ rows: SweepRow[]; file: string }> {
  if (o.configs.length === 0) throw new UserError('prune-sweep: give at least one --configs file');
  const names = o.configs.map(configName);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UserError(`prune-sweep: two configs are named '${dup}'; rename one (results go to sweep/<name>)`);
  // All checked before any work.
  const configs = o.configs.map((f) => resolvePruneConfig(loadConfigFile('prune', f), o.settings.prune, f));
  const modelCfg = readConfig(o.model);
  // Either method's targets, and a budget's, layers' and hidden size's (prune/structured.ts).
  configs.forEach((c, i) => c.transformer && checkPruneTargets(modelCfg, c.transformer, o.configs[i]));
  const evalFile = o.evalFile ?? sweepEvalFile(o.run, o.dataFile);
  const dir = path.join(o.run, 'sweep');
  const corpus = fs.existsSync(runPaths(o.run).corpus) ? runPaths(o.run).corpus : undefined;
  log(ctx, `prune-sweep: ${o.configs.length} configs, scored on ${evalFile}`);

  let unprunedEncoder = 0;
  const row = async (config: string, structures: string, model: string): Promise<SweepRow> => {
    const ev = (await evaluateCheckpoint(model, evalFile)).metrics;
    const an = await analyze(model, ctx);
    if (structures === UNPRUNED_STRUCTURES) unprunedEncoder = an.analysis.encoder_params;
    return {
      config,
      structures,
      score: ev.score,
      params: an.analysis.total_params,
      encoder_params: an.analysis.encoder_params,
      encoder_kept: unprunedEncoder > 0 ? an.analysis.encoder_params / unprunedEncoder : 1,
      mb: an.analysis.total_mb,
      latency_ms: an.analysis.latency_ms_per_batch ?? null,
    };
  };
  const rows: SweepRow[] = [await row('(unpruned)', UNPRUNED_STRUCTURES, o.model)];
  for (let i = 0; i < configs.length; i++) {
    const name = names[i];
    const pruned = path.join(dir, name);
    const refined = path.join(dir, `${name}-refinetune`);
    log(ctx, `prune-sweep ${i + 1}/${configs.length}: ${name}`);
    const p = await pruneCheckpoint(
      {
        model: o.model,
        config: configs[i],
        configFile: o.configs[i],
        out: pruned,
        dataFile: o.dataFile,
        corpusFile: corpus,
        seed: o.settings.seed,
        settings: o.settings,
      },
      ctx,
    );
    await finetuneClassifier(o.run, o.settings, ctx, {
      stage: 'refinetune',
      from: pruned,
      out: refined,
      last: `${refined}-last`,
      teacher: o.teacher,
      settings: o.settings.refinetune,
    });
    const r = await row(name, structuresLabel(configs[i]), refined);
    updateReportMetrics(p.report, { after_refinetune: r.score });
    rows.push(r);
  }
  compareWithBaseline(rows).forEach((c, i) => {
    if (c) rows[i].vs_heads_ffn = { config: c.config, score_delta: c.score_delta, encoder_params_ratio: c.ratio };
  });
  compareWithBaseline(rows, 'params').forEach((c, i) => {
    if (c) rows[i].vs_heads_ffn_model = { config: c.config, score_delta: c.score_delta, params_ratio: c.ratio };
  });
  const file = path.join(dir, 'sweep.json');
  fs.mkdirSync(dir, { recursive: true });
  writeJsonAtomic(file, { eval_file: evalFile, backend: ctx.backend, rows });
  ctx.emit(sweepTable(rows, evalFile, ctx.backend));
  return { rows, file };
}

/** "+0.0042 vs b (0.93x)": the score difference and the size ratio against a heads+FFN row. */
function vsText(v: { config: string; score_delta: number }, ratio: number): string {
  const delta = `${v.score_delta >= 0 ? '+' : ''}${v.score_delta.toFixed(4)}`;
  return `${delta} vs ${v.config} (${ratio.toFixed(2)}x)`;
}

/**
 * The sweep's table: per config what it prunes, its score, sizes, the share of the unpruned
 * encoder it kept, latency, and against heads+FFN alone the score difference with the smallest
 * heads+FFN model at least as large ("+0.0042 vs b (0.93x)": 4.2 thousandths better with 0.93 times
 * its encoder parameters), counted in encoder parameters and in the whole model's.
 */
export function sweepTable(
  rows: SweepRow[],
  evalFile: string,
  backend: string,
): Extract<EngineEvent, { type: 'table' }> {
  return {
    type: 'table',
    title: `prune-sweep (score on ${path.basename(evalFile)}, latency on ${backend})`,
    columns: [
      'config',
      'structures',
      'score',
      'params',
      'encoder params',
      'encoder %',
      'MB',
      'latency ms',
      'vs heads+FFN',
      'vs heads+FFN (model)',
    ],
    rows: rows.map((r) => [
      r.config,
      r.structures,
      +r.score.toFixed(4),
      r.params,
      r.encoder_params,
      +(100 * r.encoder_kept).toFixed(1),
      +r.mb.toFixed(3),
      r.latency_ms === null ? '' : +r.latency_ms.toFixed(2),
      r.vs_heads_ffn ? vsText(r.vs_heads_ffn, r.vs_heads_ffn.encoder_params_ratio) : '',
      r.vs_heads_ffn_model ? vsText(r.vs_heads_ffn_model, r.vs_heads_ffn_model.params_ratio) : '',
    ]),
  };
}

export const runPruneSweep: StageRun<'prune-sweep'> = async ({ args, ctx, runDir, settings }) => {
  const model = existing(args.model, 'checkpoint');
  const o = {
    model,
    configs: args.configs,
    run: runDir,
    dataFile: runPaths(runDir).train,
    settings,
    teacher: args.teacher ?? model,
  };
  // Recorded in run.json and history.jsonl like every stage: the re-fine-tunings' curves too.
  const r = await recordStage(ctx, runDir, 'prune-sweep', async () => {
    const sweep = await pruneSweep(o, ctx);
    return { ...sweep, report: sweep.file, metrics: { configs: sweep.rows.length } };
  });
  return { result: { rows: r.rows, file: r.file }, text: `sweep table: ${r.file}` };
};
