// demo-data: the synthetic demo dataset (data/demo.ts), in the GAIIC format or as raw text (jsonl).
import { DEMO_DEFAULTS, writeDemo } from '../data/demo';
import { UserError } from '../errors';
import type { StageRun } from './registry';

export const runDemoData: StageRun<'demo-data'> = async ({ args }) => {
  const o = {
    trainRows: args['train-rows'] ?? DEMO_DEFAULTS.trainRows,
    testRows: args['test-rows'] ?? DEMO_DEFAULTS.testRows,
    seed: args.seed ?? DEMO_DEFAULTS.seed,
  };
  const format = args.format ?? 'gaiic';
  if (format !== 'gaiic' && format !== 'jsonl')
    throw new UserError(`demo-data --format: expected gaiic or jsonl, got '${format}'`);
  const files = writeDemo(args.out, o, args.force, format);
  return { result: files, text: `wrote ${files.train} (${o.trainRows} rows) and ${files.test} (${o.testRows} rows)` };
};
