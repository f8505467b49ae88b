// pretrain: masked-LM pretraining from scratch; the work is train/pretrain.ts.
import { formatMetrics } from '../format';
import { runPaths } from '../io/paths';
import { replaceable } from './checks';
import { pretrain } from '../train/pretrain';
import { runStage } from './context';
import type { StageRun } from './registry';

export const runPretrain: StageRun<'pretrain'> = async ({ args, ctx, runDir, settings, section }) => {
  replaceable([runPaths(runDir).pretrain, runPaths(runDir).pretrainLast], args.force);
  const r = await runStage(
    ctx,
    runDir,
    'pretrain',
    'pretrain',
    () => pretrain(runDir, settings, ctx, { resume: args.resume }),
    section,
  );
  return { result: r, text: formatMetrics('pretrain', r.metrics) };
};
