// calibrate (toy): copy the re-fine-tuned checkpoint into the run's calibrated folder.
import * as fs from 'node:fs';
import { runStage } from './context';
import { stageFolders, type PipelineStep, type StageRun } from './registry';

export const calibrateStep: PipelineStep = async ({ from, out }) => {
  fs.cpSync(from!, out!, { recursive: true });
  return { checkpoint: out };
};

export const runCalibrate: StageRun<'calibrate'> = async ({ ctx, runDir, settings }) => {
  const from = stageFolders(runDir, 'refinetune').out;
  const out = stageFolders(runDir, 'calibrate').out;
  const r = await runStage(ctx, runDir, 'calibrate', 'calibrate', () =>
    calibrateStep({ run: runDir, settings, ctx, from, out }),
  );
  return { result: r, text: `calibrated: ${r.checkpoint}` };
};
