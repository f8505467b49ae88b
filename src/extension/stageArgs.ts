// What each command needs and the CLI arguments it becomes (pure), read from the stage registry.
// The commands fill a Selection (option name -> value) from the tree node they were invoked on,
// from defaults the run implies (each option's `fromRun`), and only then ask the user (QuickPick /
// input box) for what is still missing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMMON_OPTIONS, REGISTRY, type Ask, type OptionDef, type StageName } from '../engine/stages/registry';
import type { RunView } from './runModel';
import { readTextBounded } from '../engine/io/read';

/** Option name (without --) -> value: a path, several paths, or a switch. */
export type Selection = Record<string, string | string[] | boolean | undefined>;

const optionsOf = (stage: StageName) => REGISTRY[stage].options as Record<string, OptionDef>;

/** The options a stage cannot run without, in the order the user is asked for them. */
export function needs(stage: StageName): string[] {
  return Object.entries(optionsOf(stage))
    .filter(([, o]) => o.required)
    .map(([flag]) => flag);
}

/** Optional options the editor offers a picker for (with the default as first choice). */
export function offers(stage: StageName): { flag: string; ask: Ask }[] {
  return Object.entries(optionsOf(stage))
    .filter(([, o]) => !o.required && o.ask)
    .map(([flag, o]) => ({ flag, ask: o.ask! }));
}

/** The option of a stage that takes a checkpoint a tree node stands for (model, or fine-tune's --from). */
export function checkpointOption(stage: StageName): string | undefined {
  const asks: Ask[] = ['model', 'prunedModel', 'optionalModel'];
  return Object.entries(optionsOf(stage)).find(([, o]) => o.ask && asks.includes(o.ask))?.[0];
}

/** The value a run implies for a RunDefault, if the run has it. */
export function runDefault(spec: string, run: RunView, cwd: string): string | undefined {
  if (spec === 'data') return run.data ? path.resolve(cwd, run.data) : undefined;
  if (spec === 'test') {
    const data = path.join(run.dir, 'data');
    return ['test.jsonl', 'test.csv'].map((f) => path.join(data, f)).find((f) => fs.existsSync(f));
  }
  if (spec.startsWith('ckpt:')) {
    const key = spec.slice(5);
    return run.stages.find((st) => st.key === key && st.status === 'done' && st.checkpoint)?.checkpoint;
  }
  if (spec.startsWith('path:')) return path.join(run.dir, spec.slice(5));
  return undefined;
}

/**
 * Fill what the run itself implies: its recorded data, its checkpoints, its standard paths.
 * `cwd` is where relative paths in run.json were given (the workspace folder).
 */
export function withRunDefaults(stage: StageName, sel: Selection, run: RunView | undefined, cwd: string): Selection {
  const s = { ...sel };
  if (!run) return s;
  for (const [flag, o] of Object.entries(optionsOf(stage))) {
    if (s[flag] !== undefined || !o.fromRun) continue;
    const v = runDefault(o.fromRun, run, cwd);
    if (v !== undefined) s[flag] = v;
  }
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
    return typeof JSON.parse(readTextBounded(path.join(dir, 'config.json'), 'json')).max_len === 'number';
  } catch {
    return false;
  }
}

/** The run a selection belongs to: its --run, else the run folder its checkpoint lives in. */
export function runOfSelection(stage: StageName, sel: Selection): string | undefined {
  if (typeof sel.run === 'string') return sel.run;
  const flag = checkpointOption(stage);
  const model = flag ? sel[flag] : undefined;
  if (typeof model !== 'string') return undefined;
  const parent = path.dirname(model);
  return fs.existsSync(path.join(parent, 'run.json')) ? parent : undefined;
}

/** A checkpoint inside a run folder (`<run>/<ckpt>` with `<run>/run.json`) belongs to that run. */
export function inferRun(stage: StageName, sel: Selection): Selection {
  const flag = checkpointOption(stage);
  const model = flag ? sel[flag] : undefined;
  if (sel.run || typeof model !== 'string' || !('run' in optionsOf(stage))) return sel;
  const parent = path.dirname(model);
  return fs.existsSync(path.join(parent, 'run.json')) ? { ...sel, run: parent } : sel;
}

export function missing(stage: StageName, sel: Selection): string[] {
  return needs(stage).filter((k) => {
    const v = sel[k];
    return v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
  });
}

/** The CLI arguments (after the stage name) for a complete selection: every declared option that has a value. */
export function stageArgs(stage: StageName, sel: Selection): string[] {
  const lack = missing(stage, sel);
  if (lack.length) throw new Error(`${stage}: missing ${lack.join(', ')}`);
  const args: string[] = [];
  const all = { ...optionsOf(stage), preset: COMMON_OPTIONS.preset as OptionDef };
  for (const [flag, o] of Object.entries(all)) {
    const v = sel[flag];
    if (v === undefined || v === false || v === '') continue;
    if (o.type === 'boolean') args.push(`--${flag}`);
    else if (Array.isArray(v)) args.push(`--${flag}`, ...v);
    else args.push(`--${flag}`, String(v));
  }
  return args;
}

/** The arguments that resume a stage of a run, from what the run implies; undefined when something is missing. */
export function resumeArgs(stage: StageName, run: RunView, cwd: string): string[] | undefined {
  if (!REGISTRY[stage].resumable) return undefined;
  const sel = withRunDefaults(stage, { run: run.dir, resume: true }, run, cwd);
  // The pipeline resumes on the data the run recorded (as `pipeline --resume` needs it given).
  if ('data' in optionsOf(stage) && sel.data === undefined) sel.data = runDefault('data', run, cwd);
  return missing(stage, sel).length ? undefined : stageArgs(stage, sel);
}
