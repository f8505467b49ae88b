// prune: vocabulary pruning, then transformer pruning, of a checkpoint; the work is prune/run.ts.
import { loadConfigFile } from '../config/validate';
import { UserError } from '../errors';
import { runPaths } from '../io/paths';
import { resolvePruneConfig } from '../prune/config';
import { pruneCheckpoint, type PruneStageOptions } from '../prune/run';
import { existing, notInput } from './checks';
import { recordStage } from './context';
import type { PipelineStep, StageRun } from './registry';

/** Prune `from` into `out` with the settings' prune section (the pipeline's step). */
export const pruneStep: PipelineStep = ({ run, settings, ctx, from, out }) =>
  pruneCheckpoint(
    { model: from!, config: settings.prune, out: out!, dataFile: runPaths(run).train, seed: settings.seed, settings },
    ctx,
  );

export const runPrune: StageRun<'prune'> = async ({ args, ctx, runDir, settings, section }) => {
  const configFile = args['prune-config'];
  // A standalone .prune.json: what it leaves out comes from the run's (or preset's) prune settings.
  const config = resolvePruneConfig(loadConfigFile('prune', configFile), section, configFile);
  const model = existing(args.model, 'checkpoint');
  const dataFile = args.data ?? (runDir ? runPaths(runDir).train : undefined);
  if (!dataFile) throw new UserError(`prune: --data is required without --run (the importance data)`);
  const out = notInput(args.out, model, '--out', '--model');
  const seed = settings.seed;
  const countTexts = runDir ? [runPaths(runDir).train, runPaths(runDir).test] : undefined;
  const o: PruneStageOptions = {
    model,
    config,
    configFile,
    out,
    dataFile,
    countTexts,
    seed,
    settings,
    force: args.force,
  };
  const r = await recordStage(ctx, runDir, 'prune', () => pruneCheckpoint(o, ctx));
  return { result: r.reportData, text: `pruned checkpoint: ${r.checkpoint}\nreport: ${r.report}` };
};
