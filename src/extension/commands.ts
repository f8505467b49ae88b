// The palette commands (category "BERT Pruner") and the tree's context-menu actions. A stage
// command takes what the tree node it was invoked on implies (run, checkpoint), fills defaults
// from the run (stageArgs.ts), asks only for what is still missing, checks a config file the way
// the engine will, and hands the run to the EngineHost.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SCHEMAS } from '../engine/config/validate';
import { pruneConfigTemplate, type PruneSchema } from './configFiles';
import type { ConfigDiagnostics } from './diagnostics';
import type { EngineHost } from './engineHost';
import type { Panels } from './panels';
import { askFolder, pickCheckpoint, pickCsv, pickDataFolder, pickPreset, pickPruneConfigs, pickRun } from './pickers';
import { pickRuns } from './pickers';
import { readRun, type RunView } from './runModel';
import type { RunsNode, RunsTreeProvider } from './runsTree';
import { inferRun, missing, stageArgs, withRunDefaults, type CommandStage, type Selection } from './stageArgs';
import { displayPath, settings, workspaceRoot } from './workspace';

export interface CommandDeps {
  host: EngineHost;
  tree: RunsTreeProvider;
  panels: Panels;
  diagnostics: ConfigDiagnostics;
}

/** Command id suffix -> engine stage. */
const STAGE_COMMANDS: Record<string, CommandStage> = {
  corpusVocab: 'corpus-vocab',
  pretrain: 'pretrain',
  finetune: 'finetune',
  evaluate: 'evaluate',
  analyze: 'analyze',
  prune: 'prune',
  refinetune: 'refinetune',
  pipeline: 'pipeline',
  pruneSweep: 'prune-sweep',
};

const TITLES: Record<CommandStage, string> = {
  'demo-data': 'Create demo data',
  'corpus-vocab': 'Corpus & vocab',
  pretrain: 'Pretrain',
  finetune: 'Fine-tune',
  evaluate: 'Evaluate',
  analyze: 'Analyze',
  prune: 'Prune',
  refinetune: 'Re-fine-tune',
  pipeline: 'Pipeline',
  'prune-sweep': 'Prune sweep',
};

export function registerCommands(context: vscode.ExtensionContext, deps: CommandDeps): void {
  const reg = (id: string, fn: (...args: never[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(`bertPruner.${id}`, fn));
  for (const [id, stage] of Object.entries(STAGE_COMMANDS)) reg(id, (node?: RunsNode) => runStage(deps, stage, node));
  reg('createDemoData', () => createDemoData(deps));
  reg('cancel', () => deps.host.cancel());
  reg('newPruneConfig', (node?: RunsNode) => newPruneConfig(deps, node));
  reg('openReport', (node?: RunsNode) => openReport(deps, node));
  reg('selectBackend', () => selectBackend());
  reg('showTraining', async (node?: RunsNode) => {
    const run = runOf(node)?.dir;
    const runs = run ? [run] : await pickRuns(deps.tree.runs(), deps.panels.trainingRuns());
    if (runs) deps.panels.showTraining(runs);
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
async function ask(deps: CommandDeps, stage: CommandStage, key: keyof Selection, sel: Selection): Promise<Selection[keyof Selection] | undefined> {
  const runs = deps.tree.runs();
  switch (key) {
    case 'run':
      return pickRun(runs, stage === 'corpus-vocab' || stage === 'pipeline');
    case 'data':
      return pickDataFolder(() => createDemoData(deps));
    case 'dataFile':
      return pickCsv();
    case 'model':
      return pickCheckpoint(sel.run ? [readRun(sel.run)] : runs, stage === 'refinetune' ? 'Re-fine-tune which pruned checkpoint?' : `${TITLES[stage]} which checkpoint?`);
    case 'config':
      return (await pickPruneConfigs(false, () => newPruneConfig(deps, undefined, sel.model)))?.[0];
    case 'configs':
      return pickPruneConfigs(true, async () => undefined);
    case 'out':
      return stage === 'prune' ? path.join(path.dirname(sel.model!), 'pruned') : askFolder('Write the demo data where?', 'data/demo');
    default:
      return undefined;
  }
}

async function runStage(deps: CommandDeps, stage: CommandStage, node?: RunsNode): Promise<void> {
  const run = runOf(node);
  let sel: Selection = { run: run?.dir, model: checkpointOf(node) };
  // Ask for the run first when the stage needs one: its defaults answer most other questions.
  if (!sel.run && missing(stage, sel).includes('run') && stage !== 'corpus-vocab' && stage !== 'pipeline') {
    sel.run = await pickRun(deps.tree.runs(), false);
    if (!sel.run) return;
  }
  const cwd = workspaceRoot(sel.run ?? sel.model);
  if (!cwd) {
    void vscode.window.showErrorMessage('BERT Pruner: open a folder first; data and runs are kept in it.');
    return;
  }
  const fill = (s: Selection) => {
    const withRun = inferRun(s);
    return withRunDefaults(stage, withRun, withRun.run && fs.existsSync(path.join(withRun.run, 'run.json')) ? readRun(withRun.run) : undefined, cwd);
  };
  sel = fill(sel);
  // Ask one thing at a time: each answer (a run, a checkpoint of a run) may answer the next.
  for (let key = missing(stage, sel)[0]; key; key = missing(stage, sel)[0]) {
    const v = await ask(deps, stage, key, sel);
    if (v === undefined) return;
    sel = fill({ ...sel, [key]: v });
  }
  // A new run needs its settings preset.
  if ((stage === 'pipeline' || stage === 'corpus-vocab') && sel.run && !fs.existsSync(path.join(sel.run, 'run.json'))) {
    sel.preset = await pickPreset();
    if (!sel.preset) return;
  }
  // Check a config file the way the engine will, so mistakes show in the editor before a run starts.
  for (const file of [sel.config, ...(sel.configs ?? [])].filter((f): f is string => !!f)) {
    const kind = file.endsWith('.prune.json') ? 'prune' : 'settings';
    if (!(await deps.diagnostics.check(file, kind))) {
      const open = 'Open';
      if ((await vscode.window.showErrorMessage(`BERT Pruner: ${displayPath(file)} has errors (see Problems).`, open)) === open) {
        void vscode.window.showTextDocument(vscode.Uri.file(file));
      }
      return;
    }
  }
  const target = sel.run ? path.basename(sel.run) : sel.model ? displayPath(sel.model) : '';
  const outcome = await deps.host.start({ stage, args: stageArgs(stage, sel), cwd, title: `${TITLES[stage]} ${target}`.trim(), runDir: sel.run });
  deps.tree.refresh();
  if (outcome?.status !== 'done') return;
  // Show what the stage made.
  if (stage === 'prune' && sel.out) {
    const report = path.join(sel.out, 'prune-report.json');
    if (fs.existsSync(report)) deps.panels.showReport([report]);
  } else if (stage === 'prune-sweep' && sel.run) {
    const sweep = findFile(sel.run, 'sweep.json');
    if (sweep) deps.panels.showReport([sweep]);
  } else if (stage === 'analyze' && sel.model) {
    deps.panels.showParams([sel.model]);
  }
}

async function createDemoData(deps: CommandDeps): Promise<string | undefined> {
  const out = await askFolder('Write the demo data where?', 'data/demo');
  const cwd = workspaceRoot();
  if (!out || !cwd) return undefined;
  const outcome = await deps.host.start({ stage: 'demo-data', args: stageArgs('demo-data', { out }), cwd, title: `Create demo data in ${displayPath(out)}` });
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
    prompt: `relative to ${root}; the name must end in .prune.json (that is what gets the schema's validation and hovers)`,
    ignoreFocusOut: true,
    validateInput: (v) => (!v.endsWith('.prune.json') ? 'end the name with .prune.json' : fs.existsSync(path.resolve(root, v)) ? 'that file exists' : undefined),
  });
  if (!rel) return undefined;
  const file = path.resolve(root, rel);
  // Targets of half the model's heads and FFN: from the checkpoint this was started from, if any.
  const dir = model ?? checkpointOf(node) ?? deps.tree.runs().flatMap((r) => r.stages.filter((s) => s.key === 'finetune' && s.checkpoint).map((s) => s.checkpoint!))[0];
  let size: { num_attention_heads: number; intermediate_size: number } | undefined;
  try {
    if (dir) size = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  } catch {
    size = undefined;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, pruneConfigTemplate(SCHEMAS.prune as unknown as PruneSchema, size));
  await vscode.window.showTextDocument(vscode.Uri.file(file));
  return file;
}

async function openReport(deps: CommandDeps, node?: RunsNode): Promise<void> {
  let files: string[] = [];
  if (node?.kind === 'report') files = [node.file];
  else if (node?.kind === 'stage' && node.stage.report) files = [node.stage.report];
  else if (node?.kind === 'run') files = [findFile(node.run.dir, 'prune-report.json'), findFile(node.run.dir, 'sweep.json')].filter((f): f is string => !!f);
  else if (node?.kind === 'checkpoint' && fs.existsSync(path.join(node.dir, 'prune-report.json'))) files = [path.join(node.dir, 'prune-report.json')];
  if (files.length === 0) {
    const found = await vscode.workspace.findFiles('**/{prune-report,sweep}.json', '**/node_modules/**', 200);
    if (found.length === 0) {
      void vscode.window.showInformationMessage('BERT Pruner: no pruning report yet. Run "Prune" or "Prune sweep" first.');
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
  const current = settings().backend;
  const backends = [
    { label: 'auto', detail: 'the fastest that loads: tensorflow-gpu, tensorflow, wasm, cpu' },
    { label: 'tensorflow-gpu', detail: 'native TensorFlow with CUDA (@tensorflow/tfjs-node-gpu; set bertPruner.nodePath to a Node.js)' },
    { label: 'tensorflow', detail: 'native TensorFlow on the CPU (@tensorflow/tfjs-node)' },
    { label: 'wasm', detail: 'WebAssembly with SIMD and threads: always available' },
    { label: 'cpu', detail: 'plain JavaScript: slow, for checks' },
  ];
  const pick = await vscode.window.showQuickPick(
    backends.map((b) => ({ ...b, description: b.label === current ? 'current' : undefined })),
    { title: 'Engine backend' },
  );
  if (!pick) return;
  const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration('bertPruner').update('backend', pick.label, target);
  void vscode.window.showInformationMessage(`BERT Pruner: the next runs use the ${pick.label} backend.`);
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
  if (node?.kind === 'stage') return node.stage.checkpoint;
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
