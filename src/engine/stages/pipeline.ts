// pipeline: every pipeline stage of the registry in order (its `pipeline` rows), then the closing
// tables. With the demo settings that is
//   corpus-vocab -> pretrain -> finetune -> evaluate -> analyze
//   -> prune -> refinetune (distilled from the fine-tuned model) -> evaluate -> analyze
// With --resume, stages recorded as done in run.json (whose checkpoint is still there) are
// skipped and training stages continue from their last epoch checkpoint. Each evaluated stage's
// predictions on the test file are written to <run>/predictions/<stage>.jsonl; a test file
// without labels (a competition's test set) gets predictions and no metrics.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Settings } from '../config/settings';
import type { StageContext } from '../context';
import { readRows, tokenizerIn } from '../data/rows';
import { CancelledError } from '../errors';
import { loadRun } from '../io/run';
import { allMetrics, priorProbs } from '../train/metrics';
import { analyze } from '../analyze/model';
import { runPaths } from '../io/paths';
import { readReport, updateReportMetrics } from '../prune/report';
import { checkTransformerTargets } from '../prune/config';
import { checkPruneTargets } from '../prune/structured';
import { isSingleLabel, labelNamesOf, makeConfig, numLabels } from '../model/config';
import { readConfig } from '../io/checkpoint';
import { evaluateCheckpoint, predictCheckpoint } from '../train/evaluate';
import { notRunData, replaceable } from './checks';
import { ensureRun, log, recordStage } from './context';
import {
  pipelineOutputs,
  pipelineRow,
  pipelineStages,
  REGISTRY,
  runStageKeys,
  stageFolders,
  type StageDef,
  type StageInput,
  type StageName,
  type StageRun,
  type StepResult,
} from './registry';
export interface PipelineOptions {
  data: string;
  run: string;
  preset: string;
  settings: Settings;
  testSplit?: number;
  resume?: boolean;
  skipBadRows?: boolean;
  /** Where each stage's implementation comes from (stages/loaders.ts, handed over by the command). */
  loadStage: StageInput<'pipeline'>['loadStage'];
}

export interface TableRow {
  stage: string;
  score: number | null; // the problem's score on the test split: 1 - mlogloss, or accuracy (single-label)
  micro_f1: number | null; // single-label: macro-F1
  mb: number | null;
  params: number | null;
  encoder_params: number | null;
  latency_ms: number | null;
}

/** The test file as the first evaluated model reads it: its rows, labels, and the label prior. */
interface TestSet {
  rows: number;
  labeled: boolean;
  single: boolean;
  /** The label-prior baseline: what the metric gives for knowing only the label frequencies. */
  prior: Record<string, number> | null;
}

/** An evaluated stage's row of the closing table, and its test metrics (null without labels). */
interface Assessed {
  stage: StageName;
  metrics: Record<string, number> | null;
  row: TableRow;
}

export async function runAllStages(
  o: PipelineOptions,
  ctx: StageContext,
): Promise<{ metrics: Record<string, number>; table: TableRow[] }> {
  const s = o.settings;
  const run = o.run;
  checkPipelinePrune(s);
  ensureRun(run, {
    preset: o.preset,
    settings: s,
    backend: ctx.backend,
    data: { dir: o.data, testSplit: o.testSplit, seed: s.seed },
    // The whole pipeline is what a resume continues (the editor shows the stages it has left).
    pipeline: { steps: pipelineKeys(s), started: new Date().toISOString() },
  });
  const started = Date.now();
  const stages = pipelineStagesFor(s);
  const results = new Map<StageName, StepResult>();
  const assessed: Assessed[] = [];
  let test: TestSet | null = null;
  for (const stage of stages) {
    // A cancel that came after a stage's last step (during its validation, say) stops the
    // pipeline before the next stage starts, as the CLI promised ("after the current step").
    if (ctx.signal?.aborted) throw new CancelledError(`pipeline cancelled before ${stage}`);
    const row = pipelineRow(stage);
    const dirs = stageFolders(run, stage);
    const result =
      resumable(o, stage, dirs.out) ??
      (await recordStage(ctx, run, stage, () => runStep(o, ctx, stage), { settings: sectionOf(s, stage) }));
    results.set(stage, result);
    if (!row.evaluated) continue;
    test ??= readTestSet(run, dirs.out!, ctx);
    assessed.push(await assess(run, stage, dirs.out!, test, ctx));
  }

  const table = closingRows(test, assessed);
  const metrics = closingMetrics(test, assessed, table, results);
  metrics.seconds = (Date.now() - started) / 1000;
  await timeline(run, stages, assessed, test, ctx);
  summary(run, test, table, ctx);
  log(ctx, `pipeline finished in ${metrics.seconds.toFixed(0)} s; run folder ${run}`);
  return { metrics, table };
}

/** The model the pipeline will prune is built from these settings: impossible prune targets are
 * refused now, not after hours of pretraining and fine-tuning. */
function checkPipelinePrune(s: Settings): void {
  const tc = s.prune?.transformer;
  if (tc)
    checkPruneTargets(
      makeConfig(s.model, 1, 'classification'),
      checkTransformerTargets(tc, 'settings prune'),
      'settings prune',
    );
}

/** With --resume: what run.json recorded of a stage that is done and whose checkpoint is there. */
function resumable(o: PipelineOptions, stage: StageName, out: string | undefined): StepResult | null {
  if (!o.resume) return null;
  const rec = loadRun(o.run).stages[stage];
  if (rec?.status !== 'done' || (out && !fs.existsSync(out))) return null;
  const inRun = (rel: string | undefined) => (rel ? path.join(o.run, rel) : undefined);
  return { metrics: rec.metrics, checkpoint: inRun(rec.checkpoint), report: inRun(rec.report) };
}

/** The settings section a stage records in run.json: its own, or none for the stages with all. */
function sectionOf(s: Settings, stage: StageName): unknown {
  const section = (REGISTRY[stage] as StageDef).settings;
  return section && section !== 'all' ? s[section] : undefined;
}

/** Run a pipeline stage's step with its row's folders. */
async function runStep(o: PipelineOptions, ctx: StageContext, stage: StageName): Promise<StepResult> {
  const row = pipelineRow(stage);
  const step = (await o.loadStage(stage)).step;
  if (!step) throw new Error(`${stage} has a pipeline row but its module gives no step`);
  const dirs = stageFolders(o.run, stage);
  return step({
    run: o.run,
    settings: o.settings,
    ctx,
    resume: o.resume,
    data: { dir: o.data, testSplit: o.testSplit, skipBadRows: o.skipBadRows },
    from: row.from ? stageFolders(o.run, row.from).out : undefined,
    teacher: row.teacher ? stageFolders(o.run, row.teacher).out : undefined,
    out: dirs.out,
    last: dirs.last,
  });
}

/** The test file read against the first evaluated model's label set, and the label prior. */
function readTestSet(run: string, model: string, ctx: StageContext): TestSet {
  const p = runPaths(run);
  const tokenizer = tokenizerIn(p.vocab);
  const cfg = readConfig(model);
  const L = numLabels(cfg);
  const single = isSingleLabel(cfg);
  const labelSet = labelNamesOf(cfg);
  const train = readRows(p.train, { tokenizer, labelSet }).rows;
  const test = readRows(p.test, { tokenizer, labelSet }).rows;
  const labeled = test.length > 0 && test.every((r) => r.labels !== null);
  if (!labeled)
    log(ctx, `${p.test} has rows without labels: the pipeline writes predictions for it but no test metrics`, 'warn');
  // (single-label: the class frequencies, so its argmax is the majority class)
  const multiHot = (rs: typeof train) => {
    const m = new Float32Array(rs.length * L);
    rs.forEach((r, i) => (r.labels ?? []).forEach((l) => (m[i * L + l] = 1)));
    return m;
  };
  const prior = labeled
    ? (allMetrics(priorProbs(multiHot(train), test.length, L), multiHot(test), L, single) as unknown as Record<
        string,
        number
      >)
    : null;
  return { rows: test.length, labeled, single, prior };
}

/** An evaluated stage's model: its predictions file, its test metrics, its analysis. */
async function assess(run: string, stage: StageName, model: string, t: TestSet, ctx: StageContext): Promise<Assessed> {
  const { suffix, label } = pipelineRow(stage).evaluated!;
  const testFile = runPaths(run).test;
  fs.mkdirSync(path.join(run, 'predictions'), { recursive: true });
  await predictCheckpoint(model, testFile, path.join(run, 'predictions', `${stage}.jsonl`));
  const metrics = t.labeled
    ? (
        await recordStage(
          ctx,
          run,
          'evaluate',
          async () => ({ metrics: (await evaluateCheckpoint(model, testFile)).metrics }),
          { key: `evaluate${suffix}` },
        )
      ).metrics
    : null;
  const an = await recordStage(ctx, run, 'analyze', () => analyze(model, ctx), { key: `analyze${suffix}` });
  const row: TableRow = {
    stage: label,
    score: metrics?.score ?? null,
    micro_f1: f1Of(t.single, metrics),
    mb: an.metrics.mb,
    params: an.metrics.params,
    encoder_params: an.metrics.encoder_params,
    latency_ms: an.metrics.latency_ms ?? null,
  };
  return { stage, metrics: metrics as Record<string, number> | null, row };
}

/** The table's second score: micro-F1 (multi-label), macro-F1 (single-label). */
const f1Of = (single: boolean, m: Record<string, number> | null | undefined) =>
  m ? ((single ? m.macro_f1 : m.micro_f1) ?? null) : null;

/** The closing table: the label prior, then each evaluated model. */
function closingRows(t: TestSet | null, assessed: Assessed[]): TableRow[] {
  const prior: TableRow = {
    stage: 'label prior',
    score: t?.prior?.score ?? null,
    micro_f1: f1Of(t?.single ?? false, t?.prior),
    mb: null,
    params: null,
    encoder_params: null,
    latency_ms: null,
  };
  return [prior, ...assessed.map((a) => ({ ...a.row }))];
}

/**
 * The pipeline's metrics: the first evaluated model's score and the prior's; with a pruned model
 * after it, its score, its share of the encoder, and the speed-up. The prune stage times both
 * models alternately (same machine load), the fairer comparison: its latencies replace the
 * analyses' in the table, and the scores are recorded in its report.
 */
function closingMetrics(
  t: TestSet | null,
  assessed: Assessed[],
  table: TableRow[],
  results: Map<StageName, StepResult>,
): Record<string, number> {
  const first = assessed[0];
  const metrics: Record<string, number> =
    first?.metrics && t?.prior ? { score: first.metrics.score, prior_score: t.prior.score } : {};
  if (assessed.length < 2) return metrics;
  const lastA = assessed[assessed.length - 1];
  const report = results.get('prune')?.report;
  if (report) {
    if (first.metrics && lastA.metrics)
      updateReportMetrics(report, { before: first.metrics.score, after_refinetune: lastA.metrics.score });
    const { before, after } = readReport(report);
    if (before.latency_ms !== null && after.latency_ms !== null) {
      table[1].latency_ms = before.latency_ms;
      table[table.length - 1].latency_ms = after.latency_ms;
    }
  }
  if (lastA.metrics) metrics.pruned_score = lastA.metrics.score;
  metrics.encoder_ratio = lastA.row.encoder_params! / first.row.encoder_params!;
  const [b, a] = [table[1].latency_ms, table[table.length - 1].latency_ms];
  if (b && a) metrics.speedup = b / a;
  return metrics;
}

/** Time against quality: what each stage took and the test metric it left. */
async function timeline(
  run: string,
  stages: StageName[],
  assessed: Assessed[],
  t: TestSet | null,
  ctx: StageContext,
): Promise<void> {
  const recorded = loadRun(run).stages;
  let total = 0;
  const rows: string[][] = [];
  for (const stage of stages) {
    const row = pipelineRow(stage);
    let score: number | null = assessed.find((a) => a.stage === stage)?.metrics?.score ?? null;
    if (row.scoreCheckpoint && t?.labeled)
      score = (await evaluateCheckpoint(stageFolders(run, stage).out!, runPaths(run).test)).metrics.score;
    const sec = recorded[stage]?.seconds ?? 0;
    total += sec;
    rows.push([row.timeline ?? stage, fmt(sec / 60, 1), fmt(total / 60, 1), fmt(score, 4)]);
  }
  ctx.emit({
    type: 'table',
    title: `${path.basename(run)}: time against quality (test metric after each stage)`,
    columns: ['stage', 'minutes', 'cumulative', 'metric'],
    rows,
  });
}

/** The closing table of the models against the label prior. */
function summary(run: string, t: TestSet | null, table: TableRow[], ctx: StageContext): void {
  const single = t?.single ?? false;
  const metricName = single ? 'accuracy (single-label)' : '1 - mlogloss';
  ctx.emit({
    type: 'table',
    title:
      `${path.basename(run)}: test file of ${t?.rows ?? 0} rows, ` +
      `${t?.labeled ? `metric ${metricName}` : 'no labels (predictions in predictions/)'}; ` +
      `latency per batch of 32 x 64 tokens on ${ctx.backend}`,
    columns: ['stage', 'metric', single ? 'macro-F1' : 'micro-F1', 'MB', 'params', 'encoder params', 'latency ms'],
    rows: table.map((r) => [
      r.stage,
      fmt(r.score, 4),
      fmt(r.micro_f1, 4),
      fmt(r.mb, 2),
      r.params ?? '-',
      r.encoder_params ?? '-',
      fmt(r.latency_ms, 1),
    ]),
  });
}

const fmt = (x: number | null, d: number) => (x === null || x === undefined ? '-' : x.toFixed(d));

/** The stages the pipeline runs with these settings: without pruning settings, none of the pruning ones. */
function pipelineStagesFor(s: Settings): StageName[] {
  const pruning = !!s.prune && !!(s.prune.transformer || s.prune.vocabulary);
  return pipelineStages().filter((st) => pruning || !pipelineRow(st).onlyWhenPruning);
}

/** The run.json keys the pipeline records, in order (what a resume of the whole pipeline continues). */
export function pipelineKeys(s: Settings): string[] {
  return runStageKeys(pipelineStagesFor(s));
}

export const runPipeline: StageRun<'pipeline'> = async ({ args, ctx, runDir, settings, preset, loadStage }) => {
  notRunData(args.data, runDir);
  replaceable(pipelineOutputs(runDir), args.force);
  const o = {
    data: args.data,
    run: runDir,
    preset: args.preset ?? preset,
    settings,
    testSplit: args['test-split'],
    resume: args.resume,
    skipBadRows: args['skip-bad-rows'],
    loadStage,
  };
  const r = await runAllStages(o, ctx);
  return { result: r, text: undefined };
};
