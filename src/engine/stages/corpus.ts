// corpus-vocab: the run's data and vocabulary; the work is data/corpus.ts.
import { corpusVocab } from '../data/corpus';
import { formatMetrics } from '../format';
import { notRunData } from './checks';
import { ensureRun, recordStage } from './context';
import type { PipelineStep, StageRun } from './registry';

/** Copy the data into the run and build its vocabulary (the pipeline's step, and the command's work). */
export const corpusVocabStep: PipelineStep = ({ run, settings, ctx, data }) =>
  corpusVocab(
    {
      data: data!.dir,
      run,
      testSplit: data!.testSplit,
      seed: settings.seed,
      skipBadRows: data!.skipBadRows,
      vocabSize: settings.model.vocab_size,
    },
    ctx,
  );

export const runCorpusVocab: StageRun<'corpus-vocab'> = async ({ args, ctx, runDir, settings, preset }) => {
  notRunData(args.data, runDir);
  const data = { dir: args.data, testSplit: args['test-split'], seed: settings.seed };
  ensureRun(runDir, { preset, settings, backend: ctx.backend, data });
  const o = { dir: args.data, testSplit: args['test-split'], skipBadRows: args['skip-bad-rows'] };
  const r = await recordStage(ctx, runDir, 'corpus-vocab', () =>
    corpusVocabStep({ run: runDir, settings, ctx, data: o }),
  );
  return { result: r.metrics, text: formatMetrics('corpus-vocab', r.metrics) };
};
