// pretrain: masked-LM pretraining from scratch; the work is train/pretrain.ts.
import { formatMetrics } from '../format';
import { replaceable } from './checks';
import { pretrain } from '../train/pretrain';
import { recordStage } from './context';
import { stageFolders, type PipelineStep, type StageRun } from './registry';

/** The pipeline's step, and the command's work: pretrain into the run's pretrain folders. */
export const pretrainStep: PipelineStep = ({ run, settings, ctx, resume, out, last }) =>
  pretrain(run, settings, ctx, { out: out!, last: last!, resume });

export const runPretrain: StageRun<'pretrain'> = async ({ args, ctx, runDir, settings, section }) => {
  const { out, last } = stageFolders(runDir, 'pretrain');
  replaceable([out!, last!], args.force);
  const step = () => pretrainStep({ run: runDir, settings, ctx, resume: args.resume, out, last });
  const r = await recordStage(ctx, runDir, 'pretrain', step, { settings: section });
  return { result: r, text: formatMetrics('pretrain', r.metrics) };
};
