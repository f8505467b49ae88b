// The "Runs" tree: run -> stages (status icon, headline metric) -> checkpoint / report ->
// parameter tree. Runs and stages come from run.json (runModel.ts); a checkpoint's parameter tree
// is read when it is expanded, from config.json and the safetensors header only, and cached until
// the files change. A FileSystemWatcher on run.json / config.json / model.safetensors refreshes it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readSafetensorsHeaderAsync } from '../engine/io/safetensors';
import { shortBackendLabel } from './backends';
import { formatBytes } from './figures';
import { checkpointDescription, describeNode, describeStructure, formatCount, type ParamNode } from './paramTree';
import {
  listRuns,
  readCheckpointAsync,
  anyProcessGone,
  runningPids,
  runsSignature,
  pipelineResumable,
  runTooltip,
  stageCheckpoint,
  stagesShown,
  stageContextValue,
  stageDescription,
  stageTooltip,
  type CheckpointView,
  type RunView,
  type StageView,
} from './runModel';
import { displayPath, runsRoots } from './workspace';
import { nextSteps } from './workflow';

export type RunsNode =
  | { kind: 'run'; run: RunView }
  | { kind: 'stage'; run: RunView; stage: StageView }
  | { kind: 'checkpoint'; run?: RunView; stage?: StageView; dir: string }
  | { kind: 'report'; run: RunView; stage: StageView; file: string }
  | { kind: 'param'; dir: string; node: ParamNode; total: number }
  | { kind: 'message'; text: string; tooltip?: string };

const STATUS_ICONS: Record<StageView['status'], vscode.ThemeIcon> = {
  done: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  running: new vscode.ThemeIcon('sync~spin'),
  cancelled: new vscode.ThemeIcon('circle-slash'),
  pending: new vscode.ThemeIcon('circle-outline'),
};

const POLL_MS = 3000;

export class RunsTreeProvider implements vscode.TreeDataProvider<RunsNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly checkpoints = new Map<string, { stamp: string; view: Promise<CheckpointView> }>();
  private readonly watchers: vscode.Disposable[] = [];
  private pending: NodeJS.Timeout | undefined;
  private signature = '';
  private running: number[] = [];

  constructor() {
    // Engine writes come in bursts (run.json after every stage, checkpoint dirs renamed into
    // place): one refresh per burst is enough.
    for (const glob of [
      '**/run.json',
      '**/config.json',
      '**/model.safetensors',
      '**/prune-report.json',
      '**/sweep.json',
    ]) {
      const w = vscode.workspace.createFileSystemWatcher(glob);
      w.onDidCreate(() => this.refreshSoon());
      w.onDidChange(() => this.refreshSoon());
      w.onDidDelete(() => this.refreshSoon());
      this.watchers.push(w);
    }
    this.watchers.push(vscode.workspace.onDidChangeWorkspaceFolders(() => this.refresh()));
    this.watchers.push(
      vscode.workspace.onDidChangeConfiguration(
        (e) => e.affectsConfiguration('bertPruner.runsFolder') && this.refresh(),
      ),
    );
    // File events can miss a run another process makes (the CLI creates runs/NAME and its run.json
    // at once, before the recursive watcher has added the new folder): a cheap poll of the runs
    // folders' run.json times (one readdir and a stat per run) catches it within seconds.
    const poll = setInterval(() => {
      const now = runsSignature(runsRoots());
      // A stage's process that died without a word (kill -9) changes no file: watch it end too.
      if (now !== this.signature || anyProcessGone(this.running)) {
        this.signature = now;
        this.running = [];
        this.refresh();
      }
    }, POLL_MS);
    this.watchers.push({ dispose: () => clearInterval(poll) });
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  refreshSoon(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => this.refresh(), 300);
  }

  /** All runs of all workspace folders (for pickers too). */
  runs(): RunView[] {
    return runsRoots().flatMap(listRuns);
  }

  async getChildren(node?: RunsNode): Promise<RunsNode[]> {
    if (!node) {
      const runs = this.runs();
      this.running = runningPids(runs);
      return runs.map((run) => ({ kind: 'run', run }));
    }
    switch (node.kind) {
      case 'run':
        if (node.run.error) return [{ kind: 'message', text: node.run.error }];
        // The pipeline's stages still to run show as pending: what Resume will run.
        return stagesShown(node.run).map((stage) => ({ kind: 'stage', run: node.run, stage }));
      case 'stage': {
        const out: RunsNode[] = [];
        if (node.stage.checkpoint)
          out.push({ kind: 'checkpoint', run: node.run, stage: node.stage, dir: node.stage.checkpoint });
        if (node.stage.report) out.push({ kind: 'report', run: node.run, stage: node.stage, file: node.stage.report });
        if (node.stage.error)
          out.push({ kind: 'message', text: node.stage.error.split('\n')[0], tooltip: node.stage.error });
        return out;
      }
      case 'checkpoint': {
        const view = await this.checkpoint(node.dir);
        if (!view.tree) return [{ kind: 'message', text: view.error ?? 'no parameters', tooltip: view.error }];
        return view.tree.children.map((n) => ({ kind: 'param', dir: node.dir, node: n, total: view.tree!.params }));
      }
      case 'param':
        return node.node.children.map((n) => ({ kind: 'param', dir: node.dir, node: n, total: node.total }));
      default:
        return [];
    }
  }

  async getTreeItem(node: RunsNode): Promise<vscode.TreeItem> {
    const C = vscode.TreeItemCollapsibleState;
    switch (node.kind) {
      case 'run': {
        const r = node.run;
        const item = new vscode.TreeItem(r.name, C.Collapsed);
        item.id = `run:${r.dir}`;
        item.iconPath = new vscode.ThemeIcon(
          r.error ? 'warning' : r.stages.some((s) => s.status === 'running') ? 'sync~spin' : 'beaker',
        );
        // The backend as the status bar shows it (`webgpu: NVIDIA H200`); whole in the tooltip.
        item.description = [
          r.preset,
          r.backend && shortBackendLabel(r.backend),
          r.updated && new Date(r.updated).toLocaleString(),
        ]
          .filter(Boolean)
          .join(' · ');
        // Plain text, never Markdown: a run's name, data path and error come from files in the folder.
        item.tooltip = runTooltip(r, displayPath(r.dir));
        item.resourceUri = vscode.Uri.file(r.dir);
        item.contextValue = 'run';
        return item;
      }
      case 'stage': {
        const s = node.stage;
        const hasChildren = s.checkpoint || s.report || s.error;
        const item = new vscode.TreeItem(s.key, hasChildren ? C.Collapsed : C.None);
        item.id = `stage:${node.run.dir}:${s.key}`;
        item.iconPath = STATUS_ICONS[s.status];
        item.description = stageDescription(s);
        item.tooltip = stageTooltip(s); // plain text, not Markdown (names and errors come from run.json)
        // A next step needs a checkpoint to act on: the stage's own, or the one an evaluation scored.
        const next = s.status === 'done' && stageCheckpoint(node.run, s) ? nextSteps(s.key) : [];
        if (next.length) item.description += `${item.description ? ' · ' : ''}next: ${next[0].title}`;
        const resumable = s.status !== 'done' && pipelineResumable(node.run);
        if (resumable) item.tooltip += '\nResume continues the whole pipeline from here.';
        item.contextValue = stageContextValue(s, { resumable, next: next.map((n) => n.command) });
        return item;
      }
      case 'checkpoint': {
        const label = node.run
          ? path.relative(node.run.dir, node.dir) || path.basename(node.dir)
          : displayPath(node.dir);
        const item = new vscode.TreeItem(label, C.Collapsed);
        item.id = `ckpt:${node.dir}`;
        item.iconPath = new vscode.ThemeIcon('package');
        const view = await this.checkpoint(node.dir);
        item.description = view.tree ? checkpointDescription(view.tree) : 'unreadable';
        const size = view.tree ? formatBytes(weightsSize(node.dir) ?? view.tree.bytes) : '';
        item.tooltip = view.tree
          ? `${displayPath(node.dir)}\n${formatCount(view.tree.params)} parameters, ${size}` +
            (view.tree.structure ? `\n${describeStructure(view.tree.structure)}` : '')
          : view.error;
        item.resourceUri = vscode.Uri.file(node.dir);
        // A pruned checkpoint offers Re-fine-tune; a finished stage's checkpoint its next steps too.
        const next = node.stage?.status === 'done' ? nextSteps(node.stage.key) : [];
        item.contextValue = [
          'checkpoint',
          node.stage?.key === 'prune' ? 'pruned' : '',
          ...next.map((n) => `next-${n.command}`),
        ]
          .filter(Boolean)
          .join(':');
        return item;
      }
      case 'report': {
        const item = new vscode.TreeItem(path.basename(node.file), C.None);
        item.id = `report:${node.file}`;
        item.iconPath = new vscode.ThemeIcon('graph');
        item.tooltip = displayPath(node.file);
        item.resourceUri = vscode.Uri.file(node.file);
        item.contextValue = 'report';
        item.command = { command: 'bertPruner.openReport', title: 'Open Report', arguments: [node] };
        return item;
      }
      case 'param': {
        const n = node.node;
        const item = new vscode.TreeItem(n.label, n.children.length ? C.Collapsed : C.None);
        item.id = `param:${node.dir}:${n.id}`;
        item.description = describeNode(n, node.total);
        item.tooltip =
          `${n.label}${n.detail ? ` (${n.detail})` : ''}\n` +
          `${n.params.toLocaleString()} parameters · ${formatBytes(n.bytes)}`;
        item.iconPath = new vscode.ThemeIcon(
          n.children.length ? (n.layer ? 'layers' : 'symbol-namespace') : 'symbol-array',
        );
        item.contextValue = 'param';
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.text, C.None);
        item.iconPath = new vscode.ThemeIcon('info');
        item.tooltip = node.tooltip ?? node.text;
        return item;
      }
    }
  }

  /**
   * A checkpoint's parameter tree, cached until config.json, model.safetensors or the
   * prune-report.json beside them change. Read with
   * asynchronous file reads and built in one pass, so a huge or hostile header never blocks the
   * extension host (20 000 layer-like names: about 0.2 s instead of a minute).
   */
  checkpoint(dir: string): Promise<CheckpointView> {
    const stamp = ['config.json', 'model.safetensors', 'prune-report.json']
      .map((f) => statStamp(path.join(dir, f)))
      .join('|');
    const hit = this.checkpoints.get(dir);
    if (hit && hit.stamp === stamp) return hit.view;
    const view = readCheckpointAsync(dir, readSafetensorsHeaderAsync);
    this.checkpoints.set(dir, { stamp, view });
    return view;
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    this.watchers.forEach((w) => w.dispose());
    this.changed.dispose();
  }
}

function statStamp(file: string): string {
  try {
    const s = fs.statSync(file);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** model.safetensors' size (the figure the report and the Parameters panel show), if it is there. */
function weightsSize(dir: string): number | undefined {
  try {
    return fs.statSync(path.join(dir, 'model.safetensors')).size;
  } catch {
    return undefined;
  }
}
