// The palette commands (category "BERT Pruner") and the tree's context-menu actions. A stage
// command takes what the tree node it was invoked on implies (run, checkpoint), fills defaults
// from the run (stageArgs.ts), asks only for what is still missing, checks a config file the way
// the engine will, and hands the run to the EngineHost.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SCHEMAS } from '../engine/config/validate';
import { backendPickItems, backendPickedMessage } from './backends';
import {
  pruneConfigTemplate,
  TEMPLATE_BUDGET,
  TEMPLATE_MODEL_BUDGET,
  type ModelSize,
  type PruneSchema,
} from './configFiles';
import type { ConfigDiagnostics } from './diagnostics';
import type { EngineHost } from './engineHost';
import type { Panels } from './panels';
import {
  askFolder,
  askOutFile,
  pickCheckpoint,
  pickCsv,
  pickDataFolder,
  pickOptionalCheckpoint,
  pickPreset,
  pickPruneConfigs,
  pickRun,
  pickSettingsFile,
} from './pickers';
import { readRun, stageCheckpoint, type RunView } from './runModel';
import { askTitle, checkpointKind, loadingSnippet, nextSteps, resumeChoices, resumeTarget } from './workflow';
import { pickRuns } from './pickers';
import type { RunsNode, RunsTreeProvider } from './runsTree';
import { REGISTRY, STAGE_NAMES, type Ask, type OptionDef, type StageName } from '../engine/stages/registry';
import {
  checkpointOption,
  evaluationFile,
  inferRun,
  runOfSelection,
  missing,
  offers,
  resumeArgs,
  stageArgs,
  withRunDefaults,
  type Selection,
} from './stageArgs';
import { isEvaluationFile } from './panelData/evaluation';
import { displayPath, settings, workspaceRoot } from './workspace';
import { readTextBounded } from '../engine/io/read';

export interface CommandDeps {
  host: EngineHost;
  tree: RunsTreeProvider;
  panels: Panels;
  diagnostics: ConfigDiagnostics;
  /** A pruning config made for a model (the next step after Fine-tune): the model its CodeLens prunes. */
  configModels: Map<string, string>;
}

export function registerCommands(context: vscode.ExtensionContext, deps: CommandDeps): void {
  const reg = (id: string, fn: (...args: never[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(`bertPruner.${id}`, fn));
  for (const stage of STAGE_NAMES) {
    if (stage === 'demo-data') reg(REGISTRY[stage].command, () => createDemoData(deps));
    else reg(REGISTRY[stage].command, (node?: RunsNode) => runStage(deps, stage, node));
  }
  reg('resume', (node?: RunsNode) => resume(deps, node));
  reg('cancel', () => deps.host.cancel());
  reg('newPruneConfig', async (node?: RunsNode) => {
    const file = await newPruneConfig(deps, node);
    if (file) tellHowToRun(file);
  });
  // The CodeLens above a *.prune.json (and its editor title button): the one way a config is pruned with.
  reg('runPruneConfig', async (file?: string | vscode.Uri) => {
    const f = typeof file === 'string' ? file : (file?.fsPath ?? vscode.window.activeTextEditor?.document.uri.fsPath);
    if (!f?.endsWith('.prune.json')) return;
    // Unsaved edits are what the user means to prune with.
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === f);
    if (doc?.isDirty) await doc.save();
    return runStage(deps, 'prune', undefined, { 'prune-config': f, model: deps.configModels.get(f) });
  });
  // The next step a finished stage offers, on its tree row and in its notification.
  reg('nextFinetune', (node?: RunsNode) => runStage(deps, 'finetune', node));
  reg('nextPrune', async (node?: RunsNode) => {
    const model = checkpointOf(node);
    const file = await newPruneConfig(deps, node, model);
    if (file) tellHowToRun(file);
  });
  reg('nextRefinetune', (node?: RunsNode) => runStage(deps, 'refinetune', node));
  reg('nextEvaluate', (node?: RunsNode) => runStage(deps, 'evaluate', node));
  reg('revealCheckpoint', (node?: RunsNode) => {
    const dir = checkpointOf(node);
    if (dir) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(dir));
  });
  reg('copyLoadingSnippet', async (node?: RunsNode) => {
    const dir =
      checkpointOf(node) ?? (await pickCheckpoint(deps.tree.runs(), 'Copy the loading snippet of which model?'));
    if (!dir) return;
    await vscode.env.clipboard.writeText(loadingSnippet(dir));
    void vscode.window.showInformationMessage(
      `BERT Pruner: copied Python that loads ${displayPath(dir)} with transformers' from_pretrained.`,
    );
  });
  reg('openReport', (node?: RunsNode) => openReport(deps, node));
  reg('selectBackend', () => selectBackend());
  reg('showTraining', async (node?: RunsNode) => {
    const run = runOf(node)?.dir;
    const all = deps.tree.runs();
    // The latest run is ticked when no panel shows any yet (runs() lists the latest first).
    const shown = deps.panels.trainingRuns();
    const ticked = shown.length ? shown : all.slice(0, 1).map((r) => r.dir);
    const runs = run ? [run] : await pickRuns(all, ticked);
    if (runs?.length === 0) {
      void vscode.window.showInformationMessage(
        'BERT Pruner: no run ticked, so no curves shown. Tick at least one run.',
      );
    } else if (runs) deps.panels.showTraining(runs);
  });
  reg('showParameters', async (node?: RunsNode) => {
    const dir = checkpointOf(node) ?? (await pickCheckpoint(deps.tree.runs()));
    if (dir) deps.panels.showParams([dir]);
  });
  reg('compareParameters', async (node?: RunsNode) => {
    const runs = deps.tree.runs();
    const a = checkpointOf(node) ?? (await pickCheckpoint(runs, 'Compare: the "before" checkpoint'));
    const b = a && (await pickCheckpoint(runs, 'Compare: the "after" checkpoint'));
    if (a && b) deps.panels.showParams([a, b]);
  });
  reg('revealInExplorer', (node?: RunsNode) => {
    const p = node && pathOf(node);
    if (p) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(p));
  });
  reg('refreshRuns', () => deps.tree.refresh());
  reg('showLog', () => deps.host.output.show(true));
}

// ---- stages ----------------------------------------------------------------------------------

/** Ask for one missing selection; undefined when the user backs out. */
async function ask(
  deps: CommandDeps,
  stage: StageName,
  flag: string,
  sel: Selection,
): Promise<Selection[string] | undefined> {
  const runs = deps.tree.runs();
  const title = REGISTRY[stage].title;
  const model =
    typeof sel[checkpointOption(stage) ?? ''] === 'string' ? (sel[checkpointOption(stage)!] as string) : undefined;
  const o = (REGISTRY[stage].options as Record<string, OptionDef>)[flag];
  switch (o?.ask) {
    case 'run':
    case 'newRun':
      return pickRun(runs, o.ask === 'newRun');
    case 'data':
      return pickDataFolder(() => createDemoData(deps));
    case 'dataFile':
      return pickCsv(`${title} on which data?`);
    case 'model':
    case 'prunedModel':
      return pickCheckpoint(
        typeof sel.run === 'string' ? [readRun(sel.run)] : runs,
        askTitle(stage, flag),
        undefined,
        checkpointKind(stage, flag),
      );
    case 'pruneConfig':
      // A new config is opened for editing and never pruned with unasked: its CodeLens runs it.
      return (
        await pickPruneConfigs(false, async () => {
          const file = await newPruneConfig(deps, undefined, model);
          if (file) tellHowToRun(file);
          return undefined;
        })
      )?.[0];
    case 'pruneConfigs':
      return pickPruneConfigs(true, async () => undefined);
    case 'outFolder':
      if (stage === 'export' && model) return askFolder(`${title}: write where?`, `${model}-onnx`);
      return stage === 'prune' && model
        ? path.join(path.dirname(model), 'pruned')
        : askFolder(`${title}: write where?`, 'data/demo');
    case 'outFile':
      return askOutFile(
        `${title}: write where?`,
        model ? path.join(model, '..', 'predictions', `${path.basename(model)}.jsonl`) : 'predictions.jsonl',
      );
    default:
      return undefined;
  }
}

/** An optional option's picker, its default first: '' keeps the default, undefined backs out. */
async function offer(
  deps: CommandDeps,
  stage: StageName,
  flag: string,
  ask: Ask,
  sel: Selection,
): Promise<string | undefined> {
  const o = (REGISTRY[stage].options as Record<string, OptionDef>)[flag];
  const current = typeof sel[flag] === 'string' ? (sel[flag] as string) : undefined;
  if (ask === 'settingsFile') return pickSettingsFile(askTitle(stage, flag));
  if (ask === 'quantize') {
    const items = [
      { label: 'fp32', description: 'the weights as they are', value: '' },
      { label: 'int8', description: 'int8 weights: about a quarter of the size', value: 'int8' },
    ];
    return (await vscode.window.showQuickPick(items, { title: `${REGISTRY[stage].title}: weights?` }))?.value;
  }
  if (ask === 'optionalModel') {
    const runs = typeof sel.run === 'string' ? [readRun(sel.run)] : deps.tree.runs();
    return pickOptionalCheckpoint(
      runs,
      askTitle(stage, flag),
      current,
      o.help,
      (d) => deps.panels.showParams([d]),
      checkpointKind(stage, flag),
    );
  }
  return '';
}

async function runStage(deps: CommandDeps, stage: StageName, node?: RunsNode, given: Selection = {}): Promise<void> {
  const run = runOf(node);
  const ckptFlag = checkpointOption(stage);
  let sel: Selection = { run: run?.dir, ...given };
  if (ckptFlag && checkpointOf(node)) sel[ckptFlag] = checkpointOf(node);
  // Ask for the run first when the stage needs an existing one: its defaults answer most other questions.
  const runAsk = (REGISTRY[stage].options as Record<string, OptionDef>).run?.ask;
  if (!sel.run && missing(stage, sel).includes('run') && runAsk === 'run') {
    sel.run = await pickRun(deps.tree.runs(), false);
    if (!sel.run) return;
  }
  const where =
    typeof sel.run === 'string'
      ? sel.run
      : typeof sel[ckptFlag ?? ''] === 'string'
        ? (sel[ckptFlag!] as string)
        : undefined;
  const cwd = workspaceRoot(where);
  if (!cwd) {
    void vscode.window.showErrorMessage('BERT Pruner: open a folder first; data and runs are kept in it.');
    return;
  }
  const fill = (s: Selection) => {
    const withRun = inferRun(stage, s);
    // Defaults come from the run the checkpoint lives in, also for stages without --run (predict's test.csv).
    const dir = runOfSelection(stage, withRun);
    return withRunDefaults(
      stage,
      withRun,
      dir && fs.existsSync(path.join(dir, 'run.json')) ? readRun(dir) : undefined,
      cwd,
    );
  };
  sel = fill(sel);
  // Ask one thing at a time: each answer (a run, a checkpoint of a run) may answer the next.
  for (let key = missing(stage, sel)[0]; key; key = missing(stage, sel)[0]) {
    const v = await ask(deps, stage, key, sel);
    if (v === undefined) return;
    sel = fill({ ...sel, [key]: v });
  }
  // A new run needs its settings preset.
  if (runAsk === 'newRun' && typeof sel.run === 'string' && !fs.existsSync(path.join(sel.run, 'run.json'))) {
    sel.preset = await pickPreset();
    if (!sel.preset) return;
  }
  // The optional choices (a settings file, fine-tune's start, the teacher), each with its default first.
  for (const { flag, ask: kind } of offers(stage)) {
    const v = await offer(deps, stage, flag, kind, sel);
    if (v === undefined) return;
    if (v !== '') sel[flag] = v;
  }
  // Check a config file the way the engine will, so mistakes show in the editor before a run starts.
  const files = ['config', 'prune-config', 'configs']
    .flatMap((k) => sel[k] ?? [])
    .filter((f): f is string => typeof f === 'string' && !!f);
  // A pruning config is checked against the model it is about to prune (and remembered with it).
  const model = typeof sel.model === 'string' && sel.model ? sel.model : undefined;
  for (const file of files) {
    const kind = file.endsWith('.prune.json') ? 'prune' : 'settings';
    if (kind === 'prune' && model && (stage === 'prune' || stage === 'prune-sweep')) deps.configModels.set(file, model);
    if (!(await deps.diagnostics.check(file, kind, kind === 'prune' ? model : undefined))) {
      const open = 'Open';
      if (
        (await vscode.window.showErrorMessage(`BERT Pruner: ${displayPath(file)} has errors (see Problems).`, open)) ===
        open
      ) {
        void vscode.window.showTextDocument(vscode.Uri.file(file));
      }
      return;
    }
  }
  // Evaluate saves its result for the report panel (next to the checkpoint when it is ours).
  if (stage === 'evaluate' && typeof sel.model === 'string' && typeof sel.data === 'string')
    sel.out = evaluationFile(sel.model, sel.data, cwd);
  await start(deps, stage, sel, cwd);
}

/** Start a stage with a complete selection, then show what it made. */
async function start(deps: CommandDeps, stage: StageName, sel: Selection, cwd: string): Promise<void> {
  const runDir = typeof sel.run === 'string' ? sel.run : undefined;
  const model = sel[checkpointOption(stage) ?? ''];
  const target = runDir ? path.basename(runDir) : typeof model === 'string' ? displayPath(model) : '';
  const title = `${REGISTRY[stage].title} ${target}`.trim();
  const outcome = await deps.host.start({
    stage,
    args: stageArgs(stage, sel),
    cwd,
    title,
    runDir,
    onDone: () => offerNext(deps, title, finished(stage, sel, runDir)),
  });
  deps.tree.refresh();
  if (outcome?.status !== 'done') return;
  // Show what the stage made.
  if (stage === 'prune' && typeof sel.out === 'string') {
    const report = path.join(sel.out, 'prune-report.json');
    if (fs.existsSync(report)) deps.panels.showReport([report]);
  } else if (stage === 'prune-sweep' && runDir) {
    const sweep = findFile(runDir, 'sweep.json');
    if (sweep) deps.panels.showReport([sweep]);
  } else if (stage === 'evaluate' && typeof sel.out === 'string' && fs.existsSync(sel.out)) {
    deps.panels.showReport([sel.out]);
  } else if (stage === 'analyze' && typeof model === 'string') {
    deps.panels.showParams([model]);
  } else if (stage === 'predict' && typeof sel.out === 'string' && fs.existsSync(sel.out)) {
    void vscode.window.showTextDocument(vscode.Uri.file(sel.out));
  }
}

/**
 * The stage key and checkpoint a finished command leaves (what its next step starts from): a run's
 * record of the stage, a prune's output folder, the model an evaluation scored.
 */
function finished(stage: StageName, sel: Selection, runDir: string | undefined): { key: string; dir?: string } {
  const model = sel[checkpointOption(stage) ?? ''];
  if (stage === 'evaluate') return { key: 'evaluate', dir: typeof model === 'string' ? model : undefined };
  if (stage === 'pipeline' && runDir) {
    const r = readRun(runDir);
    const last =
      r.stages.find((s) => s.key === 'refinetune' && s.checkpoint) ?? r.stages.find((s) => s.key === 'finetune');
    return { key: 'evaluate-pruned', dir: last?.checkpoint };
  }
  const rec = runDir ? readRun(runDir).stages.find((s) => s.key === stage) : undefined;
  const out = stage === 'prune' && typeof sel.out === 'string' ? sel.out : undefined;
  return { key: stage, dir: rec?.checkpoint ?? out };
}

/** "X finished." with the next step(s) as buttons (workflow.ts nextSteps), each run on the checkpoint made. */
function offerNext(deps: CommandDeps, title: string, done: { key: string; dir?: string }): void {
  const steps = done.dir ? nextSteps(done.key) : [];
  const next = steps.length ? `; next: ${steps.map((n) => n.title).join(', ')}` : '';
  deps.host.output.info(`[bert-pruner] ${title} finished${next}`);
  void vscode.window
    .showInformationMessage(`BERT Pruner: ${title} finished.`, ...steps.map((n) => n.title))
    .then((choice) => {
      const step = steps.find((n) => n.title === choice);
      if (!step || !done.dir) return;
      const run = deps.tree.runs().find((r) => r.stages.some((s) => s.checkpoint === done.dir));
      const node: RunsNode = { kind: 'checkpoint', run, dir: done.dir };
      void vscode.commands.executeCommand(`bertPruner.${step.command}`, node);
    });
}

/** A new pruning config is only opened: say how to run it (the CodeLens above it). */
function tellHowToRun(file: string): void {
  void vscode.window.showInformationMessage(
    `BERT Pruner: edit ${displayPath(file)}, then click "Run prune with this config" above its first line. ` +
      'Nothing runs until then.',
  );
}

/**
 * Resume: the whole pipeline of a run whose pipeline stopped (from any of its stages, or the run),
 * else a cancelled or failed stage on its own (workflow.ts resumeChoices).
 */
async function resume(deps: CommandDeps, node?: RunsNode): Promise<void> {
  let run = runOf(node);
  let stage: StageName | undefined = run
    ? resumeTarget(run, node?.kind === 'stage' ? node.stage.key : undefined)
    : undefined;
  if (!run) {
    const candidates = resumeChoices(deps.tree.runs());
    if (candidates.length === 0) {
      void vscode.window.showInformationMessage('BERT Pruner: no cancelled or failed stage to resume.');
      return;
    }
    const pick =
      candidates.length === 1
        ? { c: candidates[0] }
        : await vscode.window.showQuickPick(
            candidates.map((c) => ({ label: c.label, detail: c.detail, c })),
            { title: 'Resume what?' },
          );
    if (!pick) return;
    run = pick.c.run;
    stage = pick.c.stage;
  }
  stage ??= 'pipeline';
  const cwd = workspaceRoot(run.dir);
  const args = cwd ? resumeArgs(stage, run, cwd) : undefined;
  if (!cwd || !args) {
    void vscode.window.showErrorMessage(
      `BERT Pruner: ${REGISTRY[stage].title} of ${run.name} cannot be resumed from what run.json records; ` +
        'run it again from the palette.',
    );
    return;
  }
  const title = `${REGISTRY[stage].title} ${run.name} (resumed)`;
  const dir = run.dir;
  const done = stage;
  await deps.host.start({
    stage,
    args,
    cwd,
    title,
    runDir: dir,
    onDone: () => offerNext(deps, title, finished(done, {}, dir)),
  });
  deps.tree.refresh();
}

async function createDemoData(deps: CommandDeps): Promise<string | undefined> {
  const out = await askFolder('Write the demo data where?', 'data/demo');
  const cwd = workspaceRoot();
  if (!out || !cwd) return undefined;
  const outcome = await deps.host.start({
    stage: 'demo-data',
    args: stageArgs('demo-data', { out }),
    cwd,
    title: `${REGISTRY['demo-data'].title} in ${displayPath(out)}`,
  });
  return outcome?.status === 'done' ? out : undefined;
}

// ---- configs, reports, backend ----------------------------------------------------------------

async function newPruneConfig(deps: CommandDeps, node?: RunsNode, model?: string): Promise<string | undefined> {
  const root = workspaceRoot();
  if (!root) {
    void vscode.window.showErrorMessage('BERT Pruner: open a folder first.');
    return undefined;
  }
  let n = 1;
  while (fs.existsSync(path.join(root, 'configs', `pruning${n > 1 ? n : ''}.prune.json`))) n++;
  const rel = await vscode.window.showInputBox({
    title: 'New pruning config',
    value: `configs/pruning${n > 1 ? n : ''}.prune.json`,
    prompt:
      `relative to ${root}; the name must end in .prune.json ` +
      "(that is what gets the schema's validation and hovers)",
    ignoreFocusOut: true,
    validateInput: (v) =>
      !v.endsWith('.prune.json')
        ? 'end the name with .prune.json'
        : fs.existsSync(path.resolve(root, v))
          ? 'that file exists'
          : undefined,
  });
  if (!rel) return undefined;
  const variant = await vscode.window.showQuickPick(
    [
      {
        label: 'Targets per layer',
        description: 'heads and FFN neurons',
        detail: "Keep half the model's attention heads and FFN neurons in every layer (TextPruner's targets).",
        value: 'targets' as const,
      },
      {
        label: 'One budget',
        description: `${100 * TEMPLATE_BUDGET}% of the encoder: heads, FFN, layers, hidden size`,
        detail:
          'target_encoder_params: the pruner spends it across heads, FFN neurons, whole layers and the hidden ' +
          'size, least important per parameter first.',
        value: 'budget' as const,
      },
      {
        label: 'One budget for the whole model',
        description: `${100 * TEMPLATE_MODEL_BUDGET}% of the model (what is shipped): heads, FFN, layers, hidden size`,
        detail:
          'target_model_params: the same, counted over the embeddings, encoder, pooler and classifier, so a ' +
          'smaller hidden size counts what it saves in the embeddings too.',
        value: 'model-budget' as const,
      },
    ],
    { title: 'New pruning config: prune to what?', ignoreFocusOut: true },
  );
  if (!variant) return undefined;
  const file = path.resolve(root, rel);
  // Targets of half the model's heads and FFN: from the checkpoint this was started from, if any.
  const dir =
    model ??
    checkpointOf(node) ??
    deps.tree
      .runs()
      .flatMap((r) => r.stages.filter((s) => s.key === 'finetune' && s.checkpoint).map((s) => s.checkpoint!))[0];
  let size: ModelSize | undefined;
  try {
    if (dir) size = JSON.parse(readTextBounded(path.join(dir, 'config.json'), 'json'));
  } catch {
    size = undefined;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, pruneConfigTemplate(SCHEMAS.prune as unknown as PruneSchema, size, variant.value));
  if (dir) deps.configModels.set(file, dir);
  await vscode.window.showTextDocument(vscode.Uri.file(file));
  return file;
}

async function openReport(deps: CommandDeps, node?: RunsNode): Promise<void> {
  let files: string[] = [];
  if (node?.kind === 'report') files = [node.file];
  else if (node?.kind === 'stage' && node.stage.report) files = [node.stage.report];
  else if (node?.kind === 'run')
    files = [findFile(node.run.dir, 'prune-report.json'), findFile(node.run.dir, 'sweep.json')].filter(
      (f): f is string => !!f,
    );
  else if (node?.kind === 'checkpoint') {
    const shown = (f: string) => f === 'prune-report.json' || isEvaluationFile(f);
    files = fs
      .readdirSync(node.dir)
      .filter(shown)
      .map((f) => path.join(node.dir, f));
  }
  if (files.length === 0) {
    const glob = '**/{prune-report.json,sweep.json,eval-*.json}';
    const found = await vscode.workspace.findFiles(glob, '**/node_modules/**', 200);
    if (found.length === 0) {
      const hint = 'Run "Prune", "Prune sweep" or "Evaluate" first.';
      void vscode.window.showInformationMessage(`BERT Pruner: no report yet. ${hint}`);
      return;
    }
    const pick = await vscode.window.showQuickPick(
      found.map((u) => ({ label: displayPath(u.fsPath), value: u.fsPath })),
      { title: 'Open which report?' },
    );
    if (!pick) return;
    files = [pick.value];
  }
  deps.panels.showReport(files);
}

async function selectBackend(): Promise<void> {
  // The descriptions are package.json's enumDescriptions too (one table: backends.ts).
  const pick = await vscode.window.showQuickPick(backendPickItems(settings().backend), { title: 'Engine backend' });
  if (!pick) return;
  const target = vscode.workspace.workspaceFolders?.length
    ? vscode.ConfigurationTarget.Workspace
    : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration('bertPruner').update('backend', pick.label, target);
  // After webgpu: where the adapter shows, and a way to the setting that picks one of several.
  const chooseAdapter = 'Choose Adapter';
  void vscode.window
    .showInformationMessage(backendPickedMessage(pick.label), ...(pick.label === 'webgpu' ? [chooseAdapter] : []))
    .then((choice) => {
      if (choice === chooseAdapter)
        void vscode.commands.executeCommand('workbench.action.openSettings', 'bertPruner.webgpuAdapter');
    });
}

// ---- tree nodes --------------------------------------------------------------------------------

function runOf(node?: RunsNode): RunView | undefined {
  if (!node) return undefined;
  if (node.kind === 'run' || node.kind === 'stage' || node.kind === 'report') return node.run;
  if (node.kind === 'checkpoint') return node.run;
  return undefined;
}

function checkpointOf(node?: RunsNode): string | undefined {
  if (node?.kind === 'checkpoint') return node.dir;
  if (node?.kind === 'stage') return stageCheckpoint(node.run, node.stage);
  if (node?.kind === 'param') return node.dir;
  return undefined;
}

function pathOf(node: RunsNode): string | undefined {
  switch (node.kind) {
    case 'run':
      return node.run.dir;
    case 'stage':
      return node.stage.checkpoint ?? node.stage.report ?? node.run.dir;
    case 'checkpoint':
    case 'param':
      return node.dir;
    case 'report':
      return node.file;
    default:
      return undefined;
  }
}

/** `name` in dir or one level below (prune output dirs, sweep dirs). */
function findFile(dir: string, name: string): string | undefined {
  const direct = path.join(dir, name);
  if (fs.existsSync(direct)) return direct;
  try {
    for (const d of fs.readdirSync(dir)) {
      const f = path.join(dir, d, name);
      if (fs.existsSync(f)) return f;
    }
  } catch {
    // not a directory
  }
  return undefined;
}
