// analyze: parameter tree, size, FLOPs and latency of a checkpoint; the work is analyze/model.ts.
import { analyze } from '../analyze/model';
import { formatAnalysis } from '../format';
import type { StageRun } from './registry';

export const runAnalyze: StageRun<'analyze'> = async ({ args, ctx }) => {
  const r = await analyze(args.model, ctx, { seqLen: args['seq-len'], batchSize: args['batch-size'] });
  return { result: r.analysis, text: args.json ? JSON.stringify(r.analysis, null, 2) : formatAnalysis(r.analysis) };
};
