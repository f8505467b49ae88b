// evaluate / predict: a checkpoint's scores on a labeled file, or its predictions on any file; the
// work is train/evaluate.ts.
import { formatEvaluation } from '../format';
import { evaluateCheckpoint, predictCheckpoint } from '../train/evaluate';
import { notInput } from './checks';
import { runStage } from './context';
import type { StageRun } from './registry';

export type { Evaluation } from '../train/evaluate';

export const runEvaluate: StageRun<'evaluate'> = async ({ args, ctx, runDir }) => {
  const out = args.out === undefined ? undefined : notInput(args.out, args.data, '--out', '--data');
  const r = await runStage(ctx, runDir, 'evaluate', 'evaluate', async () => evaluateCheckpoint(args.model, args.data, out));
  const e = r.evaluation;
  return { result: e, text: args.json ? JSON.stringify(e, null, 2) : formatEvaluation(e) };
};

export const runPredict: StageRun<'predict'> = async ({ args }) => {
  const out = notInput(args.out, args.data, '--out', '--data');
  const rows = predictCheckpoint(args.model, args.data, out);
  return { result: { rows, out }, text: `wrote ${rows} predictions to ${out}` };
};
