// evaluate / predict: a checkpoint's scores on a labeled file, or its predictions on any file; the
// work is train/evaluate.ts.
import { formatEvaluation } from '../format';
import { evaluateCheckpoint, predictCheckpoint } from '../train/evaluate';
import { notInput, writableFile } from './checks';
import { recordStage } from './context';
import type { StageRun } from './registry';

export type { Evaluation } from '../train/evaluate';

export const runEvaluate: StageRun<'evaluate'> = async ({ args, ctx, runDir }) => {
  const given = args.out === undefined ? undefined : notInput(args.out, args.data, '--out', '--data');
  const out = given === undefined ? undefined : writableFile(given, 'evaluation', args.force);
  const r = await recordStage(ctx, runDir, 'evaluate', async () => evaluateCheckpoint(args.model, args.data, out));
  const e = r.evaluation;
  return { result: e, text: args.json ? JSON.stringify(e, null, 2) : formatEvaluation(e) };
};

export const runPredict: StageRun<'predict'> = async ({ args }) => {
  const out = writableFile(notInput(args.out, args.data, '--out', '--data'), 'predictions', args.force);
  const rows = await predictCheckpoint(args.model, args.data, out);
  return { result: { rows, out }, text: `wrote ${rows} predictions to ${out}` };
};
