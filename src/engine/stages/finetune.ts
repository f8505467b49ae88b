// finetune / refinetune: fine-tuning of a classifier; the work is train/classifier.ts.
import { formatMetrics } from '../format';
import { runPaths } from '../io/paths';
import { finetuneClassifier, type FinetuneOptions } from '../train/classifier';
import { existing, notInput, replaceable } from './checks';
import { runStage } from './context';
import type { StageRun } from './registry';

export const runFinetune: StageRun<'finetune'> = async ({ args, ctx, runDir, settings, section }) => {
  const p = runPaths(runDir);
  const from = args.from ? existing(args.from, 'checkpoint') : p.pretrain;
  replaceable([p.finetune, p.finetuneLast], args.force);
  const o: FinetuneOptions = {
    stage: 'finetune',
    from,
    out: p.finetune,
    last: p.finetuneLast,
    resume: args.resume,
    runKey: 'finetune',
    settings: section,
  };
  const r = await runStage(
    ctx,
    runDir,
    'finetune',
    'finetune',
    () => finetuneClassifier(runDir, settings, ctx, o),
    section,
  );
  return { result: r, text: formatMetrics('finetune', r.metrics) };
};

export const runRefinetune: StageRun<'refinetune'> = async ({ args, ctx, runDir, settings, section }) => {
  const model = existing(args.model, 'checkpoint');
  const out = notInput(args.out ?? runPaths(runDir).refinetune, model, '--out', '--model');
  replaceable([out, `${out}-last`], args.force, '--out');
  const teacher = args.teacher ? existing(args.teacher, 'checkpoint') : undefined;
  const o: FinetuneOptions = {
    stage: 'refinetune',
    from: model,
    out,
    last: `${out}-last`,
    teacher,
    resume: args.resume,
    runKey: 'refinetune',
    settings: section,
  };
  const r = await runStage(
    ctx,
    runDir,
    'refinetune',
    'refinetune',
    () => finetuneClassifier(runDir, settings, ctx, o),
    section,
  );
  return { result: r, text: formatMetrics('refinetune', r.metrics) };
};
