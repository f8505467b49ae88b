// analyze: parameter tree, size, FLOPs and latency of a checkpoint; the work is analyze/model.ts.
import { analyze } from '../analyze/model';
import { formatAnalysis } from '../format';
import { existing } from './checks';
import type { StageRun } from './registry';

export const runAnalyze: StageRun<'analyze'> = async ({ args, ctx }) => {
  const baseline = args.baseline === undefined ? undefined : existing(args.baseline, 'checkpoint');
  const r = await analyze(args.model, ctx, { seqLen: args['seq-len'], batchSize: args['batch-size'], baseline });
  return { result: r.analysis, text: args.json ? JSON.stringify(r.analysis, null, 2) : formatAnalysis(r.analysis) };
};
