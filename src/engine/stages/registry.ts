// The stage registry: every command of bert-pruner declared once, with its options and their
// types, the settings section it runs with, whether it trains and resumes, its title, and what the
// editor must ask the user for. The CLI's parser and usage (commands.ts), the forked engine
// process, the extension's commands, pickers, tree actions and panels all read this table; a test
// checks package.json's command list and menus against it.
//
// The pipeline is a table too: the entries with a `pipeline` row, in this order, are its stages
// (see PipelineRow); run.json's keys, the run's checkpoint folders, the pipeline's outputs and
// resume checks, its timeline and the status bar's steps all follow from those rows.
//
// This module is plain data: the extension imports it without loading tfjs. Each stage's
// implementation is imported when it runs, through stages/loaders.ts (which imports the stage
// files; they import this file's types). Adding a stage means: an entry here, a line in
// loaders.ts, the stage's own file, and the package.json entries and docs/commands.md row the
// test asks for.
import * as path from 'node:path';
import type { Settings } from '../config/settings';
import type { StageContext } from '../context';

/** How an option's value is typed on the command line. */
export type OptionType = 'string' | 'number' | 'int' | 'boolean' | 'strings';

/**
 * What the editor asks the user for, when an option has no value yet:
 *   run / newRun       an existing run (newRun: or a new one, then a preset)
 *   data / dataFile    a data folder with train.csv / one labeled CSV file
 *   model              a checkpoint; prunedModel: a pruned checkpoint first
 *   pruneConfig(s)     *.prune.json file(s); settingsFile: an optional *.bert-pruner.json
 *   outFolder / outFile  where to write
 *   optionalModel      a checkpoint, with "the default" as first choice (fine-tune --from, --teacher)
 *   quantize           fp32 (the default) or int8
 */
export type Ask =
  | 'run'
  | 'newRun'
  | 'data'
  | 'dataFile'
  | 'model'
  | 'prunedModel'
  | 'optionalModel'
  | 'pruneConfig'
  | 'pruneConfigs'
  | 'settingsFile'
  | 'outFolder'
  | 'outFile'
  | 'quantize';

/**
 * A default the editor fills from the run the command applies to (read from its run.json):
 *   data             the run's recorded data folder
 *   test             the run's data/test.csv
 *   ckpt:STAGE       the checkpoint the run's STAGE stage made (when done)
 *   path:REL         REL inside the run folder
 */
export type RunDefault = 'data' | 'test' | `ckpt:${string}` | `path:${string}`;

export interface OptionDef {
  readonly type: OptionType;
  /** The value's name in the usage line (FILE, DIR, N, ...). */
  readonly value?: string;
  readonly help: string;
  readonly required?: boolean;
  /** The editor asks for it (required ones always; optional ones only with a picker that has a default). */
  readonly ask?: Ask;
  /** The editor fills it from the run before asking. */
  readonly fromRun?: RunDefault;
  /** The CLI's usage line leaves it out (kept for compatibility). */
  readonly hidden?: boolean;
  /** For 'int' / 'number': the smallest and largest value the parser accepts (inclusive). */
  readonly min?: number;
  readonly max?: number;
}

export type SettingsSection = 'pretrain' | 'finetune' | 'prune' | 'refinetune';

/** Where a stage's command appears in the Runs tree's context menus. */
export type TreePlace = 'run' | 'checkpoint' | 'prunedCheckpoint' | 'none';

export interface StageDef {
  /** Title in the palette ("BERT Pruner: <title>"), notifications and the status bar. */
  readonly title: string;
  /** One line for the CLI's usage. */
  readonly summary: string;
  /** The VS Code command id's suffix: bertPruner.<command>. */
  readonly command: string;
  /** The codicon of the command. */
  readonly icon: string;
  readonly options: Readonly<Record<string, OptionDef>>;
  /**
   * The settings it runs with, resolved once (run.json or preset, then --config) and handed over:
   * 'all' for stages that use several sections, a section name for one, absent for none.
   */
  readonly settings?: SettingsSection | 'all';
  /** It trains (step and epoch events: the curves panel follows it). */
  readonly trains: boolean;
  /** `--resume` continues it from its last epoch checkpoint. */
  readonly resumable: boolean;
  /** It needs a tfjs backend (false: pure file work, starts faster). */
  readonly backend: boolean;
  /** Where the tree offers it. */
  readonly tree: readonly TreePlace[];
  /** It runs the pipeline's stages (stageDef gives it their names as `steps`, for its progress). */
  readonly runsPipeline?: boolean;
  /** Its row in the pipeline, in registry order; absent: not a pipeline stage. */
  readonly pipeline?: PipelineRow;
}

/**
 * A pipeline stage. Its run.json key is the stage's name; its settings section is the entry's
 * `settings`. Folders are relative to the run.
 */
export interface PipelineRow {
  /** The checkpoint folder it writes; absent: it writes none (corpus-vocab: the run's data). */
  readonly out?: string;
  /** Training stages: it keeps its last epoch in `<out>-last`, which --resume continues from. */
  readonly last?: boolean;
  /** The stage whose checkpoint it starts from. */
  readonly from?: string;
  /** The stage whose checkpoint it distils from. */
  readonly teacher?: string;
  /** It runs only when the settings prune something (a transformer or vocabulary section). */
  readonly onlyWhenPruning?: boolean;
  /**
   * The pipeline evaluates its checkpoint on the test file: predictions/<stage>.jsonl, run.json's
   * `evaluate<suffix>` and `analyze<suffix>`, and a row `label` in the closing table.
   */
  readonly evaluated?: { readonly suffix: string; readonly label: string };
  /** Its line in the time-against-quality table (default: the stage's name). */
  readonly timeline?: string;
  /** That line shows the test metric of its checkpoint as it left it (not evaluated otherwise). */
  readonly scoreCheckpoint?: boolean;
}

/** What a pipeline stage's step receives: the run, its settings, and the row's folders resolved. */
export interface StepInput {
  run: string;
  settings: Settings;
  ctx: StageContext;
  resume?: boolean;
  /** The pipeline's data options (corpus-vocab reads them). */
  data?: { dir: string; testSplit?: number; skipBadRows?: boolean };
  from?: string;
  out?: string;
  last?: string;
  teacher?: string;
}

/** What a step leaves: what run.json records of the stage. */
export interface StepResult {
  metrics?: Record<string, number>;
  checkpoint?: string;
  report?: string;
}

export type PipelineStep = (input: StepInput) => Promise<StepResult>;

/** A stage's implementation (stages/loaders.ts): its command, and for a pipeline stage its step. */
export interface StageModule {
  run: StageRunAny;
  step?: PipelineStep;
}

/** What a command hands back: the structured result and the text a terminal user reads. */
export interface CommandResult {
  result: unknown;
  text?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StageRunAny = (input: any) => Promise<CommandResult>;

const RUN = {
  type: 'string',
  value: 'RUN',
  help: 'the run folder (a plain name lives in runs/NAME)',
  required: true,
  ask: 'run',
} as const satisfies OptionDef;
const RESUME = { type: 'boolean', help: 'continue from the last epoch checkpoint' } as const satisfies OptionDef;
const SETTINGS_FILE = {
  type: 'string',
  value: 'FILE',
  help: 'a *.bert-pruner.json settings override',
  ask: 'settingsFile',
} as const satisfies OptionDef;
const SKIP_BAD_ROWS = {
  type: 'boolean',
  help: 'skip malformed data rows (reported) instead of stopping',
} as const satisfies OptionDef;
const MODEL = {
  type: 'string',
  value: 'CKPT',
  help: 'the checkpoint',
  required: true,
  ask: 'model',
} as const satisfies OptionDef;
const DATA_DIR = {
  type: 'string',
  value: 'DIR',
  help: 'a folder with train.csv or train.jsonl (and a test file)',
  required: true,
  ask: 'data',
  fromRun: 'data',
} as const satisfies OptionDef;
const TEST_SPLIT = {
  type: 'number',
  value: 'F',
  help: 'without test.csv: the share of train.csv held out',
} as const satisfies OptionDef;
const JSON_OUT = { type: 'boolean', help: 'print the result as JSON' } as const satisfies OptionDef;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  backend: { type: 'string', value: 'NAME', help: 'auto|webgpu|tensorflow-gpu|tensorflow|wasm|cpu' },
  precision: {
    type: 'string',
    value: 'fp32|mixed',
    help: 'mixed: f16 matmul inputs, f32 accumulation, loss scaling (webgpu with shader-f16; else fp32)',
  },
  seed: { type: 'int', value: 'N', help: 'the random seed', min: 0, max: 2 ** 32 - 1 },
  preset: {
    type: 'string',
    value: 'NAME',
    // Named here, not read from config/presets.ts: the registry is imported before the settings
    // table is complete in test/toy-row.test.ts (presets are computed from it at load).
    help: "the settings preset (quick, gaiic, gaiic-deep, tiny) instead of the run's own",
  },
  'json-events': { type: 'boolean', help: 'progress as JSON lines on stdout' },
  force: { type: 'boolean', help: 'replace or write into an existing output that bert-pruner did not make' },
  help: { type: 'boolean', help: 'this help' },
} as const satisfies Record<string, OptionDef>;

export const REGISTRY = {
  'demo-data': {
    title: 'Create Demo Data',
    summary: 'write the synthetic demo dataset (GAIIC format)',
    command: 'createDemoData',
    icon: 'beaker',
    options: {
      out: {
        type: 'string',
        value: 'DIR',
        help: 'the folder to write train.csv and test.csv to',
        required: true,
        ask: 'outFolder',
      },
      'train-rows': { type: 'int', value: 'N', help: 'training rows', min: 1, max: 1_000_000 },
      'test-rows': { type: 'int', value: 'N', help: 'test rows', min: 1, max: 1_000_000 },
      format: {
        type: 'string',
        value: 'gaiic|jsonl',
        help: 'gaiic: train.csv/test.csv of token ids (default); jsonl: train.jsonl/test.jsonl of raw text',
      },
    },
    trains: false,
    resumable: false,
    backend: false,
    tree: ['none'],
  },
  'corpus-vocab': {
    title: 'Generate Corpus & Vocab',
    summary: 'corpus and vocab.txt from the train/test texts',
    command: 'corpusVocab',
    icon: 'symbol-text',
    options: {
      data: DATA_DIR,
      run: { ...RUN, ask: 'newRun' },
      'test-split': TEST_SPLIT,
      config: SETTINGS_FILE,
      'skip-bad-rows': SKIP_BAD_ROWS,
    },
    settings: 'all',
    trains: false,
    resumable: false,
    backend: true,
    tree: ['none'],
    pipeline: {},
  },
  pretrain: {
    title: 'Pretrain',
    summary: 'masked-LM pretraining from scratch',
    command: 'pretrain',
    icon: 'flame',
    options: { run: RUN, config: SETTINGS_FILE, resume: RESUME },
    settings: 'pretrain',
    trains: true,
    resumable: true,
    backend: true,
    tree: ['run'],
    pipeline: { out: 'pretrain', last: true },
  },
  finetune: {
    title: 'Fine-tune',
    summary: 'multi-label classification fine-tuning',
    command: 'finetune',
    icon: 'target',
    options: {
      run: RUN,
      from: {
        type: 'string',
        value: 'CKPT',
        help: "the checkpoint to start from (default: the run's pretrained model)",
        ask: 'optionalModel',
        fromRun: 'ckpt:pretrain',
      },
      config: SETTINGS_FILE,
      resume: RESUME,
    },
    settings: 'finetune',
    trains: true,
    resumable: true,
    backend: true,
    tree: ['run', 'checkpoint'],
    pipeline: { from: 'pretrain', out: 'finetune', last: true, evaluated: { suffix: '', label: 'bert (fine-tuned)' } },
  },
  evaluate: {
    title: 'Evaluate',
    summary: '1 - mlogloss, micro-F1, AUC, and per label: log-loss, AUC, F1, threshold',
    command: 'evaluate',
    icon: 'checklist',
    options: {
      model: MODEL,
      data: { type: 'string', value: 'FILE', help: 'a labeled CSV', required: true, ask: 'dataFile', fromRun: 'test' },
      run: { type: 'string', value: 'RUN', help: 'record the result in this run' },
      json: JSON_OUT,
      out: {
        type: 'string',
        value: 'FILE.json',
        help: 'also write the evaluation (per-label table included) to this file',
      },
    },
    trains: false,
    resumable: false,
    backend: true,
    tree: ['checkpoint'],
  },
  predict: {
    title: 'Predict',
    summary: 'probabilities and label decisions per row, as JSON lines',
    command: 'predict',
    icon: 'output',
    options: {
      model: MODEL,
      data: {
        type: 'string',
        value: 'FILE',
        help: 'a CSV (labels not needed)',
        required: true,
        ask: 'dataFile',
        fromRun: 'test',
      },
      out: {
        type: 'string',
        value: 'FILE.jsonl',
        help: 'where to write the predictions',
        required: true,
        ask: 'outFile',
      },
    },
    trains: false,
    resumable: false,
    backend: true,
    tree: ['checkpoint'],
  },
  analyze: {
    title: 'Analyze',
    summary: 'parameter tree, MB, FLOPs, latency',
    command: 'analyze',
    icon: 'pulse',
    options: {
      model: MODEL,
      json: JSON_OUT,
      'seq-len': { type: 'int', value: 'N', help: 'sequence length of the latency batch', min: 3, max: 8192 },
      'batch-size': { type: 'int', value: 'N', help: 'rows of the latency batch', min: 1, max: 65_536 },
      baseline: {
        type: 'string',
        value: 'CKPT',
        help: 'another checkpoint (e.g. the unpruned one) timed alternately with this one: the speed-up',
      },
    },
    trains: false,
    resumable: false,
    backend: true,
    tree: ['checkpoint'],
  },
  prune: {
    title: 'Prune',
    summary: 'structured pruning (heads, FFN neurons, vocabulary)',
    command: 'prune',
    icon: 'fold',
    options: {
      model: { ...MODEL, fromRun: 'ckpt:finetune' },
      'prune-config': {
        type: 'string',
        value: 'F.prune.json',
        help: 'the pruning config',
        required: true,
        ask: 'pruneConfig',
      },
      out: {
        type: 'string',
        value: 'DIR',
        help: 'the pruned checkpoint folder',
        required: true,
        ask: 'outFolder',
        fromRun: 'path:pruned',
      },
      data: { type: 'string', value: 'FILE', help: "importance data (default: the run's train.csv)" },
      run: { type: 'string', value: 'RUN', help: 'record the stage in this run' },
      config: { ...SETTINGS_FILE, help: 'a settings override (a .prune.json here is taken as --prune-config)' },
    },
    settings: 'prune',
    trains: false,
    resumable: false,
    backend: true,
    tree: ['checkpoint'],
    pipeline: {
      from: 'finetune',
      out: 'pruned',
      onlyWhenPruning: true,
      timeline: 'prune (before re-fine-tuning)',
      scoreCheckpoint: true,
    },
  },
  refinetune: {
    title: 'Re-fine-tune',
    summary: 'fine-tune a pruned model, distilled from the unpruned one',
    command: 'refinetune',
    icon: 'debug-restart',
    options: {
      model: {
        type: 'string',
        value: 'PRUNED',
        help: 'the pruned checkpoint',
        required: true,
        ask: 'prunedModel',
        fromRun: 'ckpt:prune',
      },
      run: RUN,
      teacher: {
        type: 'string',
        value: 'CKPT',
        help: "the teacher to distil from (default in the editor: the run's fine-tuned model)",
        ask: 'optionalModel',
        fromRun: 'ckpt:finetune',
      },
      out: { type: 'string', value: 'DIR', help: 'the output folder (default: RUN/refinetune)' },
      config: SETTINGS_FILE,
      resume: RESUME,
    },
    settings: 'refinetune',
    trains: true,
    resumable: true,
    backend: true,
    tree: ['prunedCheckpoint'],
    pipeline: {
      from: 'prune',
      teacher: 'finetune',
      out: 'refinetune',
      last: true,
      onlyWhenPruning: true,
      evaluated: { suffix: '-pruned', label: 'bert (pruned, re-fine-tuned)' },
    },
  },
  'prune-sweep': {
    title: 'Prune Sweep',
    summary: 'prune and re-fine-tune each config: one Pareto table',
    command: 'pruneSweep',
    icon: 'graph-scatter',
    options: {
      model: { ...MODEL, fromRun: 'ckpt:finetune' },
      configs: {
        type: 'strings',
        value: 'A.prune.json B.prune.json ...',
        help: 'the pruning configs',
        required: true,
        ask: 'pruneConfigs',
      },
      run: RUN,
      teacher: { type: 'string', value: 'CKPT', help: 'the teacher (default: --model)' },
      config: SETTINGS_FILE,
    },
    settings: 'all',
    trains: true,
    resumable: false,
    backend: true,
    tree: ['checkpoint'],
  },
  pipeline: {
    title: 'Run Pipeline',
    summary: 'every stage in order and the closing table',
    command: 'pipeline',
    icon: 'run-all',
    options: {
      data: DATA_DIR,
      run: { ...RUN, ask: 'newRun' },
      'test-split': TEST_SPLIT,
      config: SETTINGS_FILE,
      resume: RESUME,
      'skip-bad-rows': SKIP_BAD_ROWS,
    },
    settings: 'all',
    trains: true,
    resumable: true,
    backend: true,
    tree: ['run'],
    runsPipeline: true,
  },
  export: {
    title: 'Export to ONNX',
    summary: 'an ONNX model for ONNX Runtime, with tokenizer.json and labels.json (fp32 or int8)',
    command: 'exportOnnx',
    icon: 'package',
    options: {
      model: MODEL,
      out: { type: 'string', value: 'DIR', help: 'the export folder', required: true, ask: 'outFolder' },
      format: { type: 'string', value: 'onnx', help: 'the format (onnx, the default)' },
      quantize: { type: 'string', value: 'int8', help: 'int8 weights (default: fp32)', ask: 'quantize' },
      data: {
        type: 'string',
        value: 'FILE',
        help: "a labeled file to score the export on (default: the run's test file)",
      },
      json: JSON_OUT,
    },
    trains: false,
    resumable: false,
    backend: true,
    tree: ['checkpoint'],
  },
  bench: {
    title: 'Benchmark',
    summary: 'training / inference tokens/s against PyTorch, the pruned speed-up',
    command: 'bench',
    icon: 'dashboard',
    options: {
      shapes: { type: 'string', value: 'L4-H256,L2-H128', help: 'the model shapes' },
      steps: { type: 'int', value: 'N', help: 'timed steps', min: 1, max: 100_000 },
      threads: { type: 'int', value: 'N', help: 'BLAS threads', min: 1, max: 1024 },
      json: JSON_OUT,
      'no-torch': { type: 'boolean', help: 'skip the PyTorch anchor' },
      onnx: { type: 'boolean', help: "race --model's inference against ONNX Runtime (fp32, int8)" },
      model: { type: 'string', value: 'CKPT', help: 'with --onnx: the checkpoint' },
      matmul: { type: 'boolean', help: "webgpu: the matmul alone at BERT-base's shapes, TFLOP/s of each kernel" },
      lengths: {
        type: 'string',
        value: 'T1,T2,...',
        help: 'webgpu: record a training step at each sequence length; the MiB the recordings pin',
      },
      memory: {
        type: 'boolean',
        help: "webgpu, no timing: the device's MiB around a training step at each --lengths (default 128)",
      },
    },
    trains: false,
    resumable: false,
    backend: true,
    tree: ['none'],
  },
} as const satisfies Record<string, StageDef>;

export type StageName = keyof typeof REGISTRY;

/** The stages in registry order (read when asked, so that a stage added in memory counts too). */
export function stageNames(): StageName[] {
  return Object.keys(REGISTRY) as StageName[];
}
export const STAGE_NAMES = stageNames();

export function isStageName(s: unknown): s is StageName {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(REGISTRY, s);
}

export function stageDef(name: StageName): StageDef & { steps?: readonly string[] } {
  const d: StageDef = REGISTRY[name];
  return d.runsPipeline ? { ...d, steps: pipelineStages() } : d;
}

/** The pipeline's stages in order: the registry's entries with a pipeline row. */
export function pipelineStages(): StageName[] {
  return stageNames().filter((s) => (REGISTRY[s] as StageDef).pipeline);
}

/** A pipeline stage's row. */
export function pipelineRow(name: string): PipelineRow {
  const row = isStageName(name) ? (REGISTRY[name] as StageDef).pipeline : undefined;
  if (!row) throw new Error(`${name} is not a pipeline stage`);
  return row;
}

/**
 * The keys a run.json records stages under, in the pipeline's order: each pipeline stage, and after
 * an evaluated one `evaluate<suffix>` and `analyze<suffix>`. The Runs tree shows a run's stages in
 * this order (others follow in file order).
 */
export function runStageKeys(stages: StageName[] = pipelineStages()): string[] {
  return stages.flatMap((s) => {
    const e = pipelineRow(s).evaluated;
    return e ? [s, `evaluate${e.suffix}`, `analyze${e.suffix}`] : [s];
  });
}
export const RUN_STAGE_KEYS: readonly string[] = runStageKeys();

/** A run.json key: a stage's name, or one of the pipeline's evaluation and analysis keys. */
export type RunStageKey = StageName | `${'evaluate' | 'analyze'}${string}`;

/** A pipeline stage's folders in `run`: its checkpoint and `-last` folder, where it has them. */
export function stageFolders(run: string, name: string): { out?: string; last?: string } {
  const row = pipelineRow(name);
  if (!row.out) return {};
  const out = path.join(run, row.out);
  return { out, last: row.last ? `${out}-last` : undefined };
}

/** The checkpoint folder a pipeline stage writes in `run`. */
export function checkpointOf(run: string, name: string): string {
  const out = stageFolders(run, name).out;
  if (!out) throw new Error(`${name} writes no checkpoint`);
  return out;
}

/** Every folder the pipeline writes checkpoints to in `run` (what it may replace). */
export function pipelineOutputs(run: string): string[] {
  return pipelineStages().flatMap((s) => {
    const f = stageFolders(run, s);
    return [f.out, f.last].filter((x): x is string => !!x);
  });
}

/** A stage's options and the common ones, as the parser takes them. */
export function allOptions(name: StageName): Record<string, OptionDef> {
  return { ...REGISTRY[name].options, ...COMMON_OPTIONS };
}

/** `--run RUN [--from CKPT] ...`: the usage line of a stage. */
export function usageLine(name: StageName): string {
  const parts = Object.entries(REGISTRY[name].options as Record<string, OptionDef>)
    .filter(([, o]) => !o.hidden)
    .map(([flag, o]) => {
      const v = o.type === 'boolean' ? `--${flag}` : `--${flag} ${o.value ?? 'X'}`;
      return o.required ? v : `[${v}]`;
    });
  return parts.join(' ');
}

/** The settings section a stage is handed, typed. */
export type SectionOf<S> = S extends keyof Settings ? Settings[S] : S extends 'all' ? Settings : undefined;

type ValueOf<T extends OptionType> = T extends 'boolean'
  ? boolean
  : T extends 'number' | 'int'
    ? number
    : T extends 'strings'
      ? string[]
      : string;
type OptionsOf<S extends StageName> = (typeof REGISTRY)[S]['options'] & typeof COMMON_OPTIONS;
/** A stage's parsed arguments, typed from its declaration: required ones are always there. */
export type ArgsOf<S extends StageName> = {
  -readonly [K in keyof OptionsOf<S>]: OptionsOf<S>[K] extends { required: true; type: infer T extends OptionType }
    ? ValueOf<T>
    : OptionsOf<S>[K] extends { type: infer T extends OptionType }
      ? ValueOf<T> | undefined
      : never;
};

/** What a stage's `run` receives: parsed and checked arguments, settings resolved once. */
export interface StageInput<S extends StageName> {
  stage: S;
  args: ArgsOf<S>;
  ctx: StageContext;
  /** --run resolved (safeRunPath): a string where --run is required, else string or null. */
  runDir: 'run' extends keyof OptionsOf<S>
    ? OptionsOf<S>['run'] extends { required: true }
      ? string
      : string | null
    : null;
  /** The run's (or preset's) settings with --config and --seed applied: stages with settings only. */
  settings: (typeof REGISTRY)[S] extends { settings: string } ? Settings : undefined;
  /** The section of `settings` the stage declared. */
  section: SectionOf<(typeof REGISTRY)[S] extends { settings: infer X } ? X : undefined>;
  /** The preset the settings came from. */
  preset: string;
  /** Another stage's implementation (the pipeline runs its stages' steps). */
  loadStage: (name: StageName) => Promise<StageModule>;
}

export type StageRun<S extends StageName> = (input: StageInput<S>) => Promise<CommandResult>;
