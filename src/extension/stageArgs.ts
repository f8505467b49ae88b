// What each command needs and the CLI arguments it becomes (pure). The commands fill a Selection
// from the tree node they were invoked on, from defaults the run implies, and only then ask the
// user (QuickPick / input box) for what is still missing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StageName } from '../engine/protocol';
import type { RunView } from './runModel';

export interface Selection {
  run?: string; // run directory (absolute)
  data?: string; // data directory with train.csv / test.csv
  dataFile?: string; // one CSV (evaluate)
  model?: string; // checkpoint directory
  config?: string; // *.prune.json (prune) or *.bert-pruner.json (pretrain, pipeline: settings)
  configs?: string[]; // prune-sweep
  out?: string;
  preset?: string;
}

export type CommandStage = Exclude<StageName, 'predict' | 'bench'>;

/** The selections a stage cannot run without, in the order the user is asked for them. */
export const STAGE_NEEDS: Record<CommandStage, (keyof Selection)[]> = {
  'demo-data': ['out'],
  'corpus-vocab': ['data', 'run'],
  pretrain: ['run'],
  finetune: ['run'],
  evaluate: ['model', 'dataFile'],
  analyze: ['model'],
  prune: ['model', 'config', 'out'],
  refinetune: ['model', 'run'],
  'prune-sweep': ['model', 'configs', 'run'],
  pipeline: ['data', 'run'],
};

/**
 * Fill what the run itself implies: its recorded data, its checkpoints, its standard paths.
 * `cwd` is where relative paths in run.json were given (the workspace folder).
 */
export function withRunDefaults(stage: CommandStage, sel: Selection, run: RunView | undefined, cwd: string): Selection {
  const s = { ...sel };
  if (!run) return s;
  const ckpt = (key: string) => run.stages.find((st) => st.key === key && st.status === 'done' && st.checkpoint)?.checkpoint;
  if ((stage === 'corpus-vocab' || stage === 'pipeline') && !s.data && run.data) s.data = path.resolve(cwd, run.data);
  if (stage === 'evaluate' && !s.dataFile) {
    const test = path.join(run.dir, 'data', 'test.csv');
    if (fs.existsSync(test)) s.dataFile = test;
  }
  if ((stage === 'prune' || stage === 'prune-sweep') && !s.model) s.model = ckpt('finetune');
  if (stage === 'prune' && !s.out) s.out = path.join(run.dir, 'pruned');
  if (stage === 'refinetune' && !s.model) s.model = ckpt('prune');
  return s;
}

/**
 * Where the extension's Evaluate saves its result (the engine's `evaluate --out`), for the report
 * panel to show and reopen: `<checkpoint>/eval-<data file>.json` when bert-pruner made the
 * checkpoint (it lives in a run folder, or its config.json has bert-pruner's `max_len`; a
 * re-trained checkpoint replaces its folder, so a stale evaluation goes with it); otherwise
 * `<workspace>/evaluations/eval-<checkpoint>-<data file>.json`, so a foreign checkpoint is never written to.
 */
export function evaluationFile(model: string, dataFile: string, cwd: string): string {
  const safe = (s: string) => s.replace(/[^\w.-]+/g, '_');
  const data = safe(path.basename(dataFile).replace(/\.[^.]*$/, ''));
  if (isOurCheckpoint(model)) return path.join(model, `eval-${data}.json`);
  return path.join(cwd, 'evaluations', `eval-${safe(path.basename(path.resolve(model)))}-${data}.json`);
}

export function isOurCheckpoint(dir: string): boolean {
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) return false;
  if (fs.existsSync(path.join(path.dirname(path.resolve(dir)), 'run.json'))) return true;
  try {
    return typeof JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).max_len === 'number';
  } catch {
    return false;
  }
}

/** A checkpoint inside a run folder (`<run>/<ckpt>` with `<run>/run.json`) belongs to that run. */
export function inferRun(sel: Selection): Selection {
  if (sel.run || !sel.model) return sel;
  const parent = path.dirname(sel.model);
  return fs.existsSync(path.join(parent, 'run.json')) ? { ...sel, run: parent } : sel;
}

export function missing(stage: CommandStage, sel: Selection): (keyof Selection)[] {
  return STAGE_NEEDS[stage].filter((k) => {
    const v = sel[k];
    return v === undefined || (Array.isArray(v) && v.length === 0);
  });
}

/** The CLI arguments (after the stage name) for a complete selection. */
export function stageArgs(stage: CommandStage, sel: Selection): string[] {
  const lack = missing(stage, sel);
  if (lack.length) throw new Error(`${stage}: missing ${lack.join(', ')}`);
  const args: string[] = [];
  const add = (flag: string, v: string | undefined) => {
    if (v !== undefined) args.push(flag, v);
  };
  switch (stage) {
    case 'demo-data':
      add('--out', sel.out);
      break;
    case 'corpus-vocab':
      add('--data', sel.data);
      add('--run', sel.run);
      add('--preset', sel.preset);
      break;
    case 'pretrain':
    case 'finetune':
      add('--run', sel.run);
      add('--preset', sel.preset);
      add('--config', sel.config);
      break;
    case 'evaluate':
      add('--model', sel.model);
      add('--data', sel.dataFile);
      add('--run', sel.run);
      add('--out', sel.out);
      break;
    case 'analyze':
      add('--model', sel.model);
      break;
    case 'prune':
      add('--model', sel.model);
      add('--config', sel.config);
      add('--out', sel.out);
      add('--run', sel.run);
      break;
    case 'refinetune':
      add('--model', sel.model);
      add('--run', sel.run);
      break;
    case 'prune-sweep':
      add('--model', sel.model);
      args.push('--configs', ...sel.configs!);
      add('--run', sel.run);
      break;
    case 'pipeline':
      add('--data', sel.data);
      add('--run', sel.run);
      add('--preset', sel.preset);
      add('--config', sel.config);
      break;
  }
  return args;
}
