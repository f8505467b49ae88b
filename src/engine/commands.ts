// The commands: argument parsing and dispatch to the stage functions. The CLI (cli.ts) and the
// forked engine process (engine-process.ts) are thin shells over runCommand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { backendLabel, BACKEND_NAMES, BackendName, initBackend } from './backend';
import { presetNames } from './config/presets';
import { loadConfigFile } from './config/validate';
import { DEMO_DEFAULTS, writeDemo } from './data/demo';
import { UserError } from './errors';
import { safeRunPath } from './io/run';
import type { StageName } from './protocol';
import { analyze } from './stages/analyze';
import { bench, formatBench } from './stages/bench';
import { ensureRun, runStage, StageContext, stageSettings } from './stages/context';
import { corpusVocab, runPaths } from './stages/corpus';
import { evaluate, predict } from './stages/evaluate';
import { finetune } from './stages/finetune';
import { pipeline } from './stages/pipeline';
import { pretrain } from './stages/pretrain';
import { pruneStage, pruneSweep, resolvePruneConfig } from './stages/prune';
import { formatAnalysis, formatEvaluation, formatMetrics } from './format';

export const STAGES: Record<string, string> = {
  'demo-data': '--out DIR [--train-rows N] [--test-rows N] [--seed N]   write the synthetic demo dataset',
  'corpus-vocab': '--data DIR --run RUN [--test-split F]   corpus and vocab.txt from train/test texts',
  pretrain: '--run RUN [--preset P] [--config F] [--resume]   masked-LM pretraining from scratch',
  finetune: '--run RUN [--from CKPT] [--resume]   17-label classification fine-tuning',
  evaluate: '--model CKPT --data FILE [--json] [--out FILE.json]   1 - mlogloss, micro-F1, AUC, per label',
  predict: '--model CKPT --data FILE --out FILE.jsonl   probabilities and labels per row',
  analyze: '--model CKPT [--json] [--seq-len N] [--batch-size N]   parameter tree, MB, FLOPs, latency',
  prune: '--model CKPT --config F.prune.json --out DIR [--data FILE]   structured pruning',
  refinetune: '--model PRUNED --run RUN [--teacher CKPT] [--out DIR]   fine-tune a pruned model (distillation)',
  'prune-sweep': '--model CKPT --configs A.prune.json B.prune.json ... --run RUN   Pareto table',
  pipeline: '--data DIR --run RUN [--preset quick|gaiic|tiny] [--test-split F] [--config F] [--resume]',
  bench: '[--shapes L4-H256,L2-H128] [--steps N] [--threads N] [--json] [--no-torch]   tokens/s vs PyTorch, pruned speed-up',
};

export const COMMON_HELP = `common options: --backend auto|tensorflow-gpu|tensorflow|wasm|cpu  --seed N  --json-events  --skip-bad-rows  --preset NAME  --config FILE`;

const OPTIONS = {
  run: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  model: { type: 'string' },
  from: { type: 'string' },
  teacher: { type: 'string' },
  preset: { type: 'string' },
  config: { type: 'string' },
  configs: { type: 'string', multiple: true },
  backend: { type: 'string' },
  seed: { type: 'string' },
  'test-split': { type: 'string' },
  'train-rows': { type: 'string' },
  'test-rows': { type: 'string' },
  'seq-len': { type: 'string' },
  'batch-size': { type: 'string' },
  json: { type: 'boolean' },
  'json-events': { type: 'boolean' },
  resume: { type: 'boolean' },
  'skip-bad-rows': { type: 'boolean' },
  shapes: { type: 'string' },
  steps: { type: 'string' },
  threads: { type: 'string' },
  'no-torch': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type ParsedArgs = ReturnType<typeof parse>;

export function parse(stage: string, args: string[]) {
  let parsed;
  try {
    // --configs takes several values: gather everything after it up to the next option.
    const norm: string[] = [];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '--configs') {
        while (i + 1 < args.length && !args[i + 1].startsWith('--')) norm.push('--configs', args[++i]);
      } else norm.push(args[i]);
    }
    parsed = parseArgs({ args: norm, options: OPTIONS, allowPositionals: false, strict: true });
  } catch (e) {
    throw new UserError(`${stage}: ${(e as Error).message.replace(/\. To specify.*$/s, '')}\nusage: bert-pruner ${stage} ${STAGES[stage] ?? ''}`);
  }
  return parsed.values;
}

function need(v: string | undefined, flag: string, stage: string): string {
  if (!v) throw new UserError(`${stage}: ${flag} is required\nusage: bert-pruner ${stage} ${STAGES[stage]}`);
  return v;
}

function num(v: string | undefined, flag: string, def?: number): number | undefined {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UserError(`${flag}: '${v}' is not a number`);
  return n;
}

function existing(p: string, what: string): string {
  if (!fs.existsSync(p)) throw new UserError(`${p}: no such ${what}`);
  return p;
}

/** Refuse an output that is one of the command's inputs: writing it would destroy the input. */
function notInput(out: string, input: string, outFlag: string, inFlag: string): string {
  if (path.resolve(out) === path.resolve(input)) throw new UserError(`${outFlag} ${out}: is the same as ${inFlag}; writing it would overwrite the input (choose another ${outFlag})`);
  return out;
}

export interface CommandIO {
  emit: StageContext['emit'];
  signal?: AbortSignal;
}

/** What a command hands back: the structured result and the text a terminal user reads. */
export interface CommandResult {
  result: unknown;
  text?: string;
}

export async function runCommand(stage: string, args: string[], io: CommandIO): Promise<CommandResult> {
  if (!(stage in STAGES)) throw new UserError(`unknown command '${stage}'. Commands: ${Object.keys(STAGES).join(', ')}`);
  const a = parse(stage, args);
  if (a.help) return { result: null, text: `bert-pruner ${stage} ${STAGES[stage]}\n${COMMON_HELP}` };
  if (a.preset && !presetNames().includes(a.preset as never)) throw new UserError(`--preset: unknown preset '${a.preset}' (valid: ${presetNames().join(', ')})`);
  const backendName = (a.backend ?? 'auto') as BackendName;
  if (!BACKEND_NAMES.includes(backendName)) throw new UserError(`--backend: '${a.backend}' is not one of ${BACKEND_NAMES.join(', ')}`);

  if (stage === 'demo-data') {
    const out = need(a.out, '--out', stage);
    const o = { trainRows: num(a['train-rows'], '--train-rows', DEMO_DEFAULTS.trainRows)!, testRows: num(a['test-rows'], '--test-rows', DEMO_DEFAULTS.testRows)!, seed: num(a.seed, '--seed', DEMO_DEFAULTS.seed)! };
    const files = writeDemo(out, o);
    return { result: files, text: `wrote ${files.train} (${o.trainRows} rows) and ${files.test} (${o.testRows} rows)` };
  }

  await initBackend(backendName);
  const backend = backendLabel();
  io.emit({ type: 'backend', backend });
  const ctx: StageContext = { emit: io.emit, signal: io.signal, backend };
  const runDir = a.run ? safeRunPath(a.run) : null;
  const settingsFor = () => {
    const r = stageSettings(runDir, a.preset, stage === 'prune' ? undefined : a.config);
    if (a.seed !== undefined) r.settings.seed = num(a.seed, '--seed')!;
    return r;
  };

  switch (stage as StageName) {
    case 'corpus-vocab': {
      const run = need(runDir ?? undefined, '--run', stage);
      const { settings, preset } = settingsFor();
      ensureRun(run, { preset, settings, backend, data: { dir: a.data, testSplit: num(a['test-split'], '--test-split'), seed: settings.seed } });
      const r = await runStage(ctx, run, 'corpus-vocab', 'corpus-vocab', () =>
        corpusVocab({ data: need(a.data, '--data', stage), run, testSplit: num(a['test-split'], '--test-split'), seed: settings.seed, skipBadRows: a['skip-bad-rows'] }, ctx),
      );
      return { result: r.metrics, text: formatMetrics('corpus-vocab', r.metrics) };
    }
    case 'pretrain': {
      const run = need(runDir ?? undefined, '--run', stage);
      const { settings } = settingsFor();
      const r = await runStage(ctx, run, 'pretrain', 'pretrain', () => pretrain(run, settings, ctx, { resume: a.resume }), settings.pretrain);
      return { result: r, text: formatMetrics('pretrain', r.metrics) };
    }
    case 'finetune': {
      const run = need(runDir ?? undefined, '--run', stage);
      const { settings } = settingsFor();
      const p = runPaths(run);
      const r = await runStage(ctx, run, 'finetune', 'finetune', () =>
        finetune(run, settings, ctx, { stage: 'finetune', from: a.from ?? p.pretrain, out: p.finetune, last: p.finetuneLast, resume: a.resume, runKey: 'finetune' }),
        settings.finetune,
      );
      return { result: r, text: formatMetrics('finetune', r.metrics) };
    }
    case 'refinetune': {
      const run = need(runDir ?? undefined, '--run', stage);
      const { settings } = settingsFor();
      const p = runPaths(run);
      const model = existing(need(a.model, '--model', stage), 'checkpoint');
      const out = notInput(a.out ?? p.refinetune, model, '--out', '--model');
      const r = await runStage(ctx, run, 'refinetune', 'refinetune', () =>
        finetune(run, settings, ctx, { stage: 'refinetune', from: model, out, last: `${out}-last`, teacher: a.teacher, resume: a.resume, runKey: 'refinetune' }),
        settings.refinetune,
      );
      return { result: r, text: formatMetrics('refinetune', r.metrics) };
    }
    case 'evaluate': {
      const data = need(a.data, '--data', stage);
      const out = a.out === undefined ? undefined : notInput(a.out, data, '--out', '--data');
      const model = need(a.model, '--model', stage);
      const r = await runStage(ctx, runDir, 'evaluate', 'evaluate', () => evaluate(model, data, ctx, out));
      const e = r.evaluation;
      return { result: e, text: a.json ? JSON.stringify(e, null, 2) : formatEvaluation(e) };
    }
    case 'predict': {
      const r = await predict(need(a.model, '--model', stage), need(a.data, '--data', stage), notInput(need(a.out, '--out', stage), need(a.data, '--data', stage), '--out', '--data'), ctx);
      return { result: r, text: `wrote ${r.metrics.rows} predictions to ${r.out}` };
    }
    case 'analyze': {
      const r = await analyze(need(a.model, '--model', stage), ctx, { seqLen: num(a['seq-len'], '--seq-len'), batchSize: num(a['batch-size'], '--batch-size') });
      return { result: r.analysis, text: a.json ? JSON.stringify(r.analysis, null, 2) : formatAnalysis(r.analysis) };
    }
    case 'prune': {
      const configFile = need(a.config, '--config', stage);
      const { settings } = settingsFor();
      // A standalone .prune.json: what it leaves out comes from the run's (or preset's) prune settings.
      const config = resolvePruneConfig(loadConfigFile('prune', configFile), settings.prune, configFile);
      const model = existing(need(a.model, '--model', stage), 'checkpoint');
      const dataFile = a.data ?? (runDir ? runPaths(runDir).train : undefined);
      const r = await runStage(ctx, runDir, 'prune', 'prune', () =>
        pruneStage({ model, config, configFile, out: notInput(need(a.out, '--out', stage), model, '--out', '--model'), dataFile: need(dataFile, '--data', stage), seed: settings.seed, settings }, ctx),
      );
      return { result: r.reportData, text: `pruned checkpoint: ${r.checkpoint}\nreport: ${r.report}` };
    }
    case 'prune-sweep': {
      const run = need(runDir ?? undefined, '--run', stage);
      const { settings } = settingsFor();
      if (!a.configs?.length) throw new UserError(`prune-sweep: --configs needs at least one .prune.json file`);
      const model = existing(need(a.model, '--model', stage), 'checkpoint');
      const r = await pruneSweep({ model, configs: a.configs, run, dataFile: runPaths(run).train, settings, teacher: a.teacher ?? model }, ctx);
      return { result: r, text: `sweep table: ${r.file}` };
    }
    case 'pipeline': {
      const run = need(runDir ?? undefined, '--run', stage);
      const { settings, preset } = settingsFor();
      const r = await pipeline(
        { data: need(a.data, '--data', stage), run, preset: a.preset ?? preset, settings, testSplit: num(a['test-split'], '--test-split'), resume: a.resume, skipBadRows: a['skip-bad-rows'] },
        ctx,
      );
      return { result: r, text: undefined };
    }
    case 'bench': {
      const r = await bench({ shapes: a.shapes?.split(','), json: a.json, torch: a['no-torch'] ? false : undefined, steps: num(a.steps, '--steps'), threads: num(a.threads, '--threads') }, ctx);
      return { result: r, text: a.json ? JSON.stringify(r, null, 2) : formatBench(r) };
    }
    default:
      throw new UserError(`'${stage}' is not available yet`);
  }
}

