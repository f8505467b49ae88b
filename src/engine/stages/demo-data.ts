// demo-data: the synthetic demo dataset (data/demo.ts), in the GAIIC format.
import { DEMO_DEFAULTS, writeDemo } from '../data/demo';
import type { StageRun } from './registry';

export const runDemoData: StageRun<'demo-data'> = async ({ args }) => {
  const o = {
    trainRows: args['train-rows'] ?? DEMO_DEFAULTS.trainRows,
    testRows: args['test-rows'] ?? DEMO_DEFAULTS.testRows,
    seed: args.seed ?? DEMO_DEFAULTS.seed,
  };
  const files = writeDemo(args.out, o, args.force);
  return { result: files, text: `wrote ${files.train} (${o.trainRows} rows) and ${files.test} (${o.testRows} rows)` };
};
