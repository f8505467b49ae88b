// pipeline: every stage of the reference project in order, then the closing table.
//   corpus-vocab -> pretrain -> finetune -> evaluate -> analyze
//   -> prune -> refinetune (distilled from the fine-tuned model) -> evaluate -> analyze
// With --resume, stages recorded as done in run.json are skipped and training stages continue
// from their last epoch checkpoint. Both models' predictions on the test file are written to
// <run>/predictions/{finetune,refinetune}.jsonl; a test file without labels (a competition's test
// set) gets predictions and no metrics.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Settings } from '../config/settings';
import { readRows, tokenizerIn } from '../data/rows';
import { loadRun } from '../io/run';
import { allMetrics, priorProbs } from '../train/metrics';
import { analyze } from '../analyze/model';
import { corpusVocab } from '../data/corpus';
import { runPaths } from '../io/paths';
import { readReport, REPORT_FILE, updateReportMetrics } from '../prune/report';
import { pruneCheckpoint } from '../prune/run';
import { checkTargets } from '../prune/transformer';
import { isSingleLabel, labelNamesOf, makeConfig, numLabels } from '../model/config';
import { readConfig } from '../io/checkpoint';
import { finetuneClassifier } from '../train/classifier';
import { evaluateCheckpoint, predictCheckpoint } from '../train/evaluate';
import { pretrain } from '../train/pretrain';
import { notRunData, replaceable } from './checks';
import { ensureRun, log, runStage, StageContext } from './context';
import { RUN_STAGE_KEYS as PIPELINE_KEYS, type RunStageKey, type StageRun } from './registry';

export interface PipelineOptions {
  data: string;
  run: string;
  preset: string;
  settings: Settings;
  testSplit?: number;
  resume?: boolean;
  skipBadRows?: boolean;
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

export async function pipeline(
  o: PipelineOptions,
  ctx: StageContext,
): Promise<{ metrics: Record<string, number>; table: TableRow[] }> {
  const s = o.settings;
  const run = o.run;
  // The model the pipeline will prune is built from these settings: impossible prune targets are
  // refused now, not after hours of pretraining and fine-tuning.
  const tc = s.prune?.transformer;
  if (tc && tc.pruning_method === 'iterative')
    checkTargets(makeConfig(s.model, 1, 'classification'), tc, 'settings prune');
  ensureRun(run, {
    preset: o.preset,
    settings: s,
    backend: ctx.backend,
    data: { dir: o.data, testSplit: o.testSplit, seed: s.seed },
    // The whole pipeline is what a resume continues (the editor shows the stages it has left).
    pipeline: { steps: pipelineKeys(s), started: new Date().toISOString() },
  });
  let p = runPaths(run);
  const done = (key: RunStageKey) => o.resume && loadRun(run).stages[key]?.status === 'done';
  const started = Date.now();

  if (!done('corpus-vocab')) {
    await runStage(ctx, run, 'corpus-vocab', 'corpus-vocab', () =>
      corpusVocab(
        {
          data: o.data,
          run,
          testSplit: o.testSplit,
          seed: s.seed,
          skipBadRows: o.skipBadRows,
          vocabSize: s.model.vocab_size,
        },
        ctx,
      ),
    );
  }
  p = runPaths(run); // the run's data files are .jsonl for raw text, known once corpus-vocab has run
  if (!done('pretrain'))
    await runStage(ctx, run, 'pretrain', 'pretrain', () => pretrain(run, s, ctx, { resume: o.resume }), s.pretrain);
  if (!done('finetune')) {
    await runStage(
      ctx,
      run,
      'finetune',
      'finetune',
      () =>
        finetuneClassifier(run, s, ctx, {
          stage: 'finetune',
          from: p.pretrain,
          out: p.finetune,
          last: p.finetuneLast,
          resume: o.resume,
          runKey: 'finetune',
          settings: s.finetune,
        }),
      s.finetune,
    );
  }
  const tokenizer = tokenizerIn(p.vocab);
  // The fine-tuned model's label set: what the rows' labels mean.
  const ftCfg = readConfig(p.finetune);
  const L = numLabels(ftCfg);
  const single = isSingleLabel(ftCfg);
  const labelSet = labelNamesOf(ftCfg);
  const train = readRows(p.train, { tokenizer, labelSet }).rows;
  const test = readRows(p.test, { tokenizer, labelSet }).rows;
  const labeled = test.length > 0 && test.every((r) => r.labels !== null);
  if (!labeled)
    log(ctx, `${p.test} has rows without labels: the pipeline writes predictions for it but no test metrics`, 'warn');
  const predictions = (model: string, name: string) => {
    fs.mkdirSync(path.join(run, 'predictions'), { recursive: true });
    return predictCheckpoint(model, p.test, path.join(run, 'predictions', `${name}.jsonl`));
  };
  /** The test metrics of a checkpoint (null without labels) and its predictions file. */
  const evaluate = async (model: string) => {
    return { metrics: (await evaluateCheckpoint(model, p.test)).metrics };
  };
  const assess = async (model: string, name: string, key: RunStageKey) => {
    await predictions(model, name);
    return labeled ? (await runStage(ctx, run, 'evaluate', key, () => evaluate(model))).metrics : null;
  };
  const ev1 = await assess(p.finetune, 'finetune', 'evaluate');
  const an1 = await runStage(ctx, run, 'analyze', 'analyze', () => analyze(p.finetune, ctx));

  const rows: TableRow[] = [];
  // The label-prior baseline: what the metric gives for knowing only the label frequencies.
  // (single-label: the class frequencies, so its argmax is the majority class)
  const multiHot = (rs: typeof train) => {
    const m = new Float32Array(rs.length * L);
    rs.forEach((r, i) => (r.labels ?? []).forEach((l) => (m[i * L + l] = 1)));
    return m;
  };
  const prior = labeled ? allMetrics(priorProbs(multiHot(train), test.length, L), multiHot(test), L, single) : null;
  // The table's second score: micro-F1 (multi-label), macro-F1 (single-label).
  const f1Of = (m: Record<string, number> | null | undefined) =>
    m ? ((single ? m.macro_f1 : m.micro_f1) ?? null) : null;
  rows.push({
    stage: 'label prior',
    score: prior?.score ?? null,
    micro_f1: f1Of(prior as unknown as Record<string, number> | null),
    mb: null,
    params: null,
    encoder_params: null,
    latency_ms: null,
  });
  rows.push({
    stage: 'bert (fine-tuned)',
    score: ev1?.score ?? null,
    micro_f1: f1Of(ev1),
    mb: an1.metrics.mb,
    params: an1.metrics.params,
    encoder_params: an1.metrics.encoder_params,
    latency_ms: an1.metrics.latency_ms ?? null,
  });

  const metrics: Record<string, number> = ev1 && prior ? { score: ev1.score, prior_score: prior.score } : {};
  const pruning = pipelineKeys(s).includes('prune');
  if (pruning) {
    // A resumed run keeps a finished prune stage (gradual pruning trains, so it is not cheap).
    const reportFile = path.join(p.pruned, REPORT_FILE);
    const pr =
      done('prune') && fs.existsSync(reportFile)
        ? { report: reportFile, reportData: readReport(reportFile) }
        : await runStage(
            ctx,
            run,
            'prune',
            'prune',
            () =>
              pruneCheckpoint(
                { model: p.finetune, config: s.prune, out: p.pruned, dataFile: p.train, seed: s.seed, settings: s },
                ctx,
              ),
            s.prune,
          );
    if (!done('refinetune')) {
      await runStage(
        ctx,
        run,
        'refinetune',
        'refinetune',
        () =>
          finetuneClassifier(run, s, ctx, {
            stage: 'refinetune',
            from: p.pruned,
            out: p.refinetune,
            last: p.refinetuneLast,
            teacher: p.finetune,
            resume: o.resume,
            runKey: 'refinetune',
            settings: s.refinetune,
          }),
        s.refinetune,
      );
    }
    const ev2 = await assess(p.refinetune, 'refinetune', 'evaluate-pruned');
    const an2 = await runStage(ctx, run, 'analyze', 'analyze-pruned', () => analyze(p.refinetune, ctx));
    if (ev1 && ev2) updateReportMetrics(pr.report, { before: ev1.score, after_refinetune: ev2.score });
    rows.push({
      stage: 'bert (pruned, re-fine-tuned)',
      score: ev2?.score ?? null,
      micro_f1: f1Of(ev2),
      mb: an2.metrics.mb,
      params: an2.metrics.params,
      encoder_params: an2.metrics.encoder_params,
      latency_ms: an2.metrics.latency_ms ?? null,
    });
    // The prune stage times both models alternately (same machine load): the fairer comparison.
    const { before, after } = pr.reportData;
    if (before.latency_ms !== null && after.latency_ms !== null) {
      rows[1].latency_ms = before.latency_ms;
      rows[2].latency_ms = after.latency_ms;
    }
    if (ev2) metrics.pruned_score = ev2.score;
    metrics.encoder_ratio = an2.metrics.encoder_params / an1.metrics.encoder_params;
    if (rows[1].latency_ms && rows[2].latency_ms) metrics.speedup = rows[1].latency_ms / rows[2].latency_ms;
  }
  metrics.seconds = (Date.now() - started) / 1000;
  // Time against quality: what each training stage took and the test metric it left.
  let prunedScore: number | null = null;
  if (labeled && pruning) {
    prunedScore = (await evaluateCheckpoint(p.pruned, p.test)).metrics.score;
  }
  const recorded = loadRun(run).stages;
  const timeline: [RunStageKey, string, number | null][] = [
    ['corpus-vocab', 'corpus-vocab', null],
    ['pretrain', 'pretrain', null],
    ['finetune', 'finetune', ev1?.score ?? null],
  ];
  if (pruning)
    timeline.push(
      ['prune', 'prune (before re-fine-tuning)', prunedScore],
      ['refinetune', 'refinetune', metrics.pruned_score ?? null],
    );
  let total = 0;
  const timeRows = timeline.map(([key, label, score]) => {
    const sec = recorded[key]?.seconds ?? 0;
    total += sec;
    return [label, fmt(sec / 60, 1), fmt(total / 60, 1), fmt(score, 4)];
  });
  ctx.emit({
    type: 'table',
    title: `${path.basename(run)}: time against quality (test metric after each stage)`,
    columns: ['stage', 'minutes', 'cumulative', 'metric'],
    rows: timeRows,
  });
  const metricName = single ? 'accuracy (single-label)' : '1 - mlogloss';
  ctx.emit({
    type: 'table',
    title:
      `${path.basename(run)}: test file of ${test.length} rows, ` +
      `${labeled ? `metric ${metricName}` : 'no labels (predictions in predictions/)'}; ` +
      `latency per batch of 32 x 64 tokens on ${ctx.backend}`,
    columns: ['stage', 'metric', single ? 'macro-F1' : 'micro-F1', 'MB', 'params', 'encoder params', 'latency ms'],
    rows: rows.map((r) => [
      r.stage,
      fmt(r.score, 4),
      fmt(r.micro_f1, 4),
      fmt(r.mb, 2),
      r.params ?? '-',
      r.encoder_params ?? '-',
      fmt(r.latency_ms, 1),
    ]),
  });
  log(ctx, `pipeline finished in ${metrics.seconds.toFixed(0)} s; run folder ${run}`);
  return { metrics, table: rows };
}

const fmt = (x: number | null, d: number) => (x === null || x === undefined ? '-' : x.toFixed(d));

/** The run.json keys the pipeline records, in order: without pruning settings it stops after the analysis. */
export function pipelineKeys(s: Settings): RunStageKey[] {
  const pruning = !!s.prune && !!(s.prune.transformer || s.prune.vocabulary);
  return PIPELINE_KEYS.filter((k) => pruning || PIPELINE_KEYS.indexOf(k) < PIPELINE_KEYS.indexOf('prune'));
}

export const runPipeline: StageRun<'pipeline'> = async ({ args, ctx, runDir, settings, preset }) => {
  notRunData(args.data, runDir);
  const p = runPaths(runDir);
  const outputs = [p.pretrain, p.pretrainLast, p.finetune, p.finetuneLast, p.pruned, p.refinetune, p.refinetuneLast];
  replaceable(outputs, args.force);
  const o = {
    data: args.data,
    run: runDir,
    preset: args.preset ?? preset,
    settings,
    testSplit: args['test-split'],
    resume: args.resume,
    skipBadRows: args['skip-bad-rows'],
  };
  const r = await pipeline(o, ctx);
  return { result: r, text: undefined };
};
