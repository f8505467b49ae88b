// finetune / refinetune: fine-tuning of a classifier; the work is train/classifier.ts.
import { formatMetrics } from '../format';
import { finetuneClassifier } from '../train/classifier';
import { existing, notInput, replaceable } from './checks';
import { recordStage } from './context';
import { checkpointOf, stageFolders, type PipelineStep, type StageRun } from './registry';

/** Fine-tune `from` into `out` (the pipeline's step, and the command's work). */
export const finetuneStep: PipelineStep = ({ run, settings, ctx, resume, from, out, last }) =>
  finetuneClassifier(run, settings, ctx, {
    stage: 'finetune',
    from: from!,
    out: out!,
    last: last!,
    resume,
    runKey: 'finetune',
    settings: settings.finetune,
  });

/** Re-fine-tune the pruned `from` into `out`, distilled from `teacher` where given. */
export const refinetuneStep: PipelineStep = ({ run, settings, ctx, resume, from, out, last, teacher }) =>
  finetuneClassifier(run, settings, ctx, {
    stage: 'refinetune',
    from: from!,
    out: out!,
    last: last!,
    teacher,
    resume,
    runKey: 'refinetune',
    settings: settings.refinetune,
  });

export const runFinetune: StageRun<'finetune'> = async ({ args, ctx, runDir, settings, section }) => {
  const from = args.from ? existing(args.from, 'checkpoint') : checkpointOf(runDir, 'pretrain');
  const { out, last } = stageFolders(runDir, 'finetune');
  replaceable([out!, last!], args.force);
  const step = () => finetuneStep({ run: runDir, settings, ctx, resume: args.resume, from, out, last });
  const r = await recordStage(ctx, runDir, 'finetune', step, { settings: section });
  return { result: r, text: formatMetrics('finetune', r.metrics) };
};

export const runRefinetune: StageRun<'refinetune'> = async ({ args, ctx, runDir, settings, section }) => {
  const from = existing(args.model, 'checkpoint');
  const out = notInput(args.out ?? checkpointOf(runDir, 'refinetune'), from, '--out', '--model');
  const last = `${out}-last`;
  replaceable([out, last], args.force, '--out');
  const teacher = args.teacher ? existing(args.teacher, 'checkpoint') : undefined;
  const step = () => refinetuneStep({ run: runDir, settings, ctx, resume: args.resume, from, out, last, teacher });
  const r = await recordStage(ctx, runDir, 'refinetune', step, { settings: section });
  return { result: r, text: formatMetrics('refinetune', r.metrics) };
};
