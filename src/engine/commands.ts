// The commands: argument parsing and dispatch to the stage functions, all read from the stage
// registry (stages/registry.ts). The CLI (cli.ts) and the forked engine process
// (engine-process.ts) are thin shells over runCommand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  activePrecision,
  AutoHint,
  autoChoiceNote,
  backendLabel,
  BACKEND_NAMES,
  BackendName,
  initBackend,
  matmulNote,
  Precision,
  PRECISIONS,
  precisionNote,
} from './backend';
import { sizeOfConfig } from './backend/speeds';
import { presetNames } from './config/presets';
import { readJson, recoverRun } from './io/atomic';
import { checkConfigJson } from './model/config';
import { checkMemory } from './model/memory';
import type { Settings } from './config/settings';
import { UserError } from './errors';
import { holdRun, setCommand } from './io/ownership';
import { loadRun, safeRunPath } from './io/run';
import type { StageContext } from './context';
import { stageSettings } from './stages/context';
import { loadStage } from './stages/loaders';
import {
  allOptions,
  COMMON_OPTIONS,
  isStageName,
  REGISTRY,
  stageNames,
  stageDef,
  usageLine,
  type CommandResult,
  type OptionDef,
  type StageInput,
  type StageName,
} from './stages/registry';
import { readTextBounded } from './io/read';

export type { CommandResult } from './stages/registry';

/** `bert-pruner <stage> <usage>`, one line per stage. */
export function usage(stage: StageName): string {
  return `usage: bert-pruner ${stage} ${usageLine(stage)}`;
}

export function commonHelp(): string {
  const flags = Object.entries(COMMON_OPTIONS as Record<string, OptionDef>).map(([f, o]) =>
    o.type === 'boolean' ? `--${f}` : `--${f} ${o.value ?? 'X'}`,
  );
  return `common options: ${flags.join('  ')}`;
}

/** The CLI's overview: every stage with its summary. */
export function overview(): string {
  const lines = stageNames().map(
    (s) => `  ${s.padEnd(13)} ${REGISTRY[s].summary}\n  ${' '.repeat(13)} ${usageLine(s)}`,
  );
  return `usage: bert-pruner <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n${commonHelp()}`;
}

/** Parse a stage's arguments against its declared options: unknown flags and mistyped values are user errors. */
export function parse<S extends StageName>(stage: S, args: string[]): StageInput<S>['args'] {
  const defs = allOptions(stage);
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [flag, o] of Object.entries(defs)) {
    options[flag] = { type: o.type === 'boolean' ? 'boolean' : 'string' };
    if (o.type === 'strings') options[flag].multiple = true;
  }
  options.help.short = 'h';
  let values: Record<string, unknown>;
  try {
    // A 'strings' option takes several values: gather everything after it up to the next option.
    const norm: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const flag = args[i].startsWith('--') ? args[i].slice(2) : '';
      if (defs[flag]?.type === 'strings') {
        const name = args[i];
        while (i + 1 < args.length && !args[i + 1].startsWith('--')) norm.push(name, args[++i]);
      } else norm.push(args[i]);
    }
    values = parseArgs({ args: norm, options, allowPositionals: false, strict: true }).values as Record<
      string,
      unknown
    >;
  } catch (e) {
    throw new UserError(`${stage}: ${(e as Error).message.replace(/\. To specify.*$/s, '')}\n${usage(stage)}`);
  }
  if (values.help) return values as StageInput<S>['args'];
  for (const [flag, o] of Object.entries(defs)) {
    const v = values[flag];
    if (v === undefined) continue; // required ones are checked by runCommand
    if (o.type === 'strings' && (v as string[]).length === 0)
      throw new UserError(`${stage}: --${flag} needs at least one value`);
    if (o.type === 'number' || o.type === 'int') {
      const n = Number(v);
      if (String(v).trim() === '' || !Number.isFinite(n)) throw new UserError(`--${flag}: '${v}' is not a number`);
      if (o.type === 'int' && !Number.isInteger(n)) throw new UserError(`--${flag}: '${v}' is not a whole number`);
      if (o.min !== undefined && n < o.min) {
        throw new UserError(`--${flag}: ${v} is below the smallest allowed, ${o.min}`);
      }
      if (o.max !== undefined && n > o.max) {
        throw new UserError(`--${flag}: ${v} is above the largest allowed, ${o.max}`);
      }
      values[flag] = n;
    }
  }
  return values as StageInput<S>['args'];
}

export interface CommandIO {
  emit: StageContext['emit'];
  signal?: AbortSignal;
}

/**
 * `prune --config X.prune.json` (the documented form before --prune-config) still works: a
 * --config file that is a pruning config (by name, or by its top-level keys) is taken as one.
 */
function isPruneConfigFile(file: string): boolean {
  if (file.endsWith('.prune.json')) return true;
  if (file.endsWith('.bert-pruner.json') || !fs.existsSync(file)) return false;
  try {
    const v = readJson(file) as Record<string, unknown>;
    return !!v && typeof v === 'object' && ('transformer' in v || 'vocabulary' in v) && !('model' in v || 'prune' in v);
  } catch {
    return false;
  }
}

/** The settings section a stage recorded in run.json (what its last attempt ran with), if any. */
function recordedSection(runDir: string, stage: string): unknown {
  try {
    const s = loadRun(runDir).stages[stage]?.settings;
    return s && typeof s === 'object' ? s : undefined;
  } catch {
    return undefined; // no run yet, or an unreadable one: the stage itself reports that
  }
}

export async function runCommand(stage: string, args: string[], io: CommandIO): Promise<CommandResult> {
  if (!isStageName(stage)) throw new UserError(`unknown command '${stage}'. Commands: ${stageNames().join(', ')}`);
  const def = stageDef(stage);
  const a = parse(stage, args) as Record<string, unknown> & {
    backend?: string;
    precision?: string;
    preset?: string;
    config?: string;
  };
  if (a.help) return { result: null, text: `bert-pruner ${stage}: ${def.summary}\n${usage(stage)}\n${commonHelp()}` };
  if (a.preset && !presetNames().includes(a.preset as never)) {
    throw new UserError(`--preset: unknown preset '${a.preset}' (valid: ${presetNames().join(', ')})`);
  }
  const backendName = (a.backend ?? 'auto') as BackendName;
  if (!BACKEND_NAMES.includes(backendName))
    throw new UserError(`--backend: '${a.backend}' is not one of ${BACKEND_NAMES.join(', ')}`);
  const precisionAsked = (a.precision ?? 'fp32') as Precision;
  if (!PRECISIONS.includes(precisionAsked))
    throw new UserError(`--precision: '${a.precision}' is not one of ${PRECISIONS.join(', ')}`);
  if (stage === 'prune' && a.config && isPruneConfigFile(a.config)) {
    if (a['prune-config'])
      throw new UserError(`prune: --config ${a.config} is a pruning config, and --prune-config is given too`);
    a['prune-config'] = a.config;
    a.config = undefined;
  }
  for (const [flag, o] of Object.entries(def.options as Record<string, OptionDef>)) {
    if (o.required && a[flag] === undefined) throw new UserError(`${stage}: --${flag} is required\n${usage(stage)}`);
  }

  const runDir = typeof a.run === 'string' ? safeRunPath(a.run) : null;
  // Settings are resolved once here, for the stages that declare them, and handed over.
  let settings: Settings | undefined;
  let preset = a.preset ?? 'quick';
  if (def.settings) {
    const r = stageSettings(runDir, a.preset, a.config);
    if (a.seed !== undefined) r.settings.seed = a.seed as number;
    // --resume continues with the settings the interrupted attempt recorded, unless --config says otherwise.
    const section = def.settings !== 'all' ? def.settings : undefined;
    if (a.resume && !a.config && runDir && section) {
      const recorded = recordedSection(runDir, stage);
      if (recorded) (r.settings as unknown as Record<string, unknown>)[section] = recorded;
    }
    settings = r.settings;
    preset = r.preset;
  }
  setCommand(stage);
  // One process per run, for the whole command (the pipeline's stages included): run.lock. A
  // folder that is not a run, or a symbolic link out of it, is refused here, before any work.
  const warn = (message: string) => io.emit({ type: 'log', level: 'warn', message });
  const held = runDir ? holdRun(runDir, { force: a.force === true, warn }) : null;
  try {
    if (runDir) recoverRun(runDir, warn); // crash recovery: only here, in a command that writes the run
    let backend = 'none';
    let precision: Precision = 'fp32';
    if (def.backend) {
      await initBackend(backendName, () => autoHint(def, a, settings), precisionAsked);
      backend = backendLabel();
      precision = activePrecision();
      const note = autoChoiceNote();
      if (note) io.emit({ type: 'log', level: 'info', message: note });
      const mm = matmulNote();
      if (mm) io.emit({ type: 'log', level: 'info', message: mm });
      const pn = precisionNote();
      if (pn) io.emit({ type: 'log', level: 'warn', message: pn });
      io.emit({ type: 'backend', backend, precision });
    }
    // Before pretraining builds a model from the settings: does it fit (nothing allocated yet)?
    if (settings && (stage === 'pretrain' || stage === 'pipeline')) {
      const manifest = runDir ? path.join(runDir, 'run.json') : '';
      const source = a.config ?? (manifest && fs.existsSync(manifest) ? manifest : `preset '${preset}'`);
      checkSettingsMemory(settings, runDir, source, def.backend ? backend : backendName);
    }
    const ctx: StageContext = { emit: io.emit, signal: io.signal, backend, precision };
    const section = def.settings && def.settings !== 'all' ? settings?.[def.settings] : settings;
    const { run } = await loadStage(stage);
    return await run({ stage, args: a, ctx, runDir, settings, section, preset, loadStage } as StageInput<typeof stage>);
  } finally {
    held?.release();
  }
}

/**
 * What `auto` weighs against bench's measurements (backend/speeds.ts): the model the stage runs
 * (the checkpoint --model or --from names, else the settings' model) and whether it trains. A
 * checkpoint that cannot be read gives no hint; the stage itself says what is wrong with it.
 */
export function autoHint(
  def: { trains?: boolean },
  a: Record<string, unknown>,
  settings?: Settings,
): AutoHint | undefined {
  const kind = def.trains ? 'train' : 'infer';
  for (const key of ['model', 'from']) {
    const dir = a[key];
    if (typeof dir !== 'string') continue;
    try {
      const file = path.join(dir, 'config.json');
      return { kind, size: sizeOfConfig(checkConfigJson(readJson(file), file)) };
    } catch {
      return undefined;
    }
  }
  const m = settings?.model;
  if (!m) return undefined;
  return {
    kind,
    size: { layers: m.num_hidden_layers, hidden: m.hidden_size, attention: m.hidden_size, ffn: m.intermediate_size },
  };
}

/**
 * Before pretraining builds a model from the settings: does it fit? The vocabulary is the run's
 * (vocab/vocab.txt) when corpus-vocab has made it, else left out (the pipeline checks before it).
 */
function checkSettingsMemory(s: Settings, runDir: string | null, source: string, backend: string): void {
  let vocab = 0;
  const vocabFile = runDir ? path.join(runDir, 'vocab', 'vocab.txt') : '';
  if (vocabFile && fs.existsSync(vocabFile)) {
    vocab = readTextBounded(vocabFile, 'vocab').split('\n').filter(Boolean).length;
  }
  const m = s.model;
  checkMemory(
    { ...m, vocab_size: vocab },
    { mode: 'train', batch: s.pretrain.batch_size, seqLen: m.max_len, maskProb: s.pretrain.mask_prob },
    backend,
    { shape: source, prefix: 'model.', batch: `${source}: pretrain.batch_size` },
  );
}
