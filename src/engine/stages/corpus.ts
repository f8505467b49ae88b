// corpus-vocab: the run's data and vocabulary; the work is data/corpus.ts.
import { corpusVocab } from '../data/corpus';
import { formatMetrics } from '../format';
import { notRunData } from './checks';
import { ensureRun, runStage } from './context';
import type { StageRun } from './registry';

export const runCorpusVocab: StageRun<'corpus-vocab'> = async ({ args, ctx, runDir, settings, preset }) => {
  notRunData(args.data, runDir);
  const data = { dir: args.data, testSplit: args['test-split'], seed: settings.seed };
  ensureRun(runDir, { preset, settings, backend: ctx.backend, data });
  const o = {
    data: args.data,
    run: runDir,
    testSplit: args['test-split'],
    seed: settings.seed,
    skipBadRows: args['skip-bad-rows'],
    vocabSize: settings.model.vocab_size,
  };
  const r = await runStage(ctx, runDir, 'corpus-vocab', 'corpus-vocab', () => corpusVocab(o, ctx));
  return { result: r.metrics, text: formatMetrics('corpus-vocab', r.metrics) };
};
