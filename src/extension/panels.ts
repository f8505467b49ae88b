// The three webview panels (training curves, parameters, pruning report) and their serializers.
// Each panel's page is a bundled script from dist/webview/ plus media/panel.css (panelHtml.ts has
// the CSP). The page keeps what it shows in its webview state, so after a reload VS Code hands that
// state to the serializer, which reopens the panel on the same files (re-read, not trusted).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineHost } from './engineHost';
import { makeNonce, panelHtml } from './panelHtml';
import { isEvaluationFile } from './panelData/evaluation';
import { parseWebviewMessage, type WebviewMessage } from './panelData/messages';
import { paramsColumn, type ParamsColumn, type ParamsMessage } from './panelData/params';
import { reportMessage } from './panelData/report';
import {
  changeMessage,
  eventRecord,
  mergeSteps,
  pushLive,
  runCurves,
  type LiveHistory,
  type RunCurves,
  type SeriesBuilder,
  type TrainingMessage,
} from './panelData/training';
import { readTail } from './runModel';
import type { RunsTreeProvider } from './runsTree';
import { displayPath } from './workspace';
import { isStageName, REGISTRY } from '../engine/stages/registry';
import { readJsonBounded } from '../engine/io/read';

type PanelKind = 'training' | 'params' | 'report';
const VIEW_TYPES: Record<PanelKind, string> = {
  training: 'bertPruner.training',
  params: 'bertPruner.params',
  report: 'bertPruner.report',
};

export interface PanelsDeps {
  context: vscode.ExtensionContext;
  host: EngineHost;
  tree: RunsTreeProvider;
  /** Ask the user for a checkpoint (the parameters panel's "Compare with…"). */
  pickCheckpoint: (title: string) => Promise<string | undefined>;
  /** Ask the user for runs (the training panel's "Add run…"); `shown` are the runs it shows. */
  pickRuns?: (shown: string[]) => Promise<string[] | undefined>;
}

/** The webview side of a panel: html, message validation, posting. */
class PanelView {
  /** Paths this panel was given; the only ones its page may ask us to open. */
  allowed = new Set<string>();

  constructor(
    readonly panel: vscode.WebviewPanel,
    kind: PanelKind,
    extensionUri: vscode.Uri,
    onMessage: (m: WebviewMessage) => void,
    log: (line: string) => void,
    /** Runs this panel shows; the only ones its page may ask to remove (training panel). */
    readonly runs: string[] = [],
  ) {
    const webview = panel.webview;
    webview.options = {
      enableScripts: true,
      localResourceRoots: [
        vscode.Uri.joinPath(extensionUri, 'dist', 'webview'),
        vscode.Uri.joinPath(extensionUri, 'media'),
      ],
    };
    webview.html = panelHtml({
      title: panel.title,
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', 'panels.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'panel.css')).toString(),
      panel: kind,
    });
    webview.onDidReceiveMessage((raw) => {
      const m = parseWebviewMessage(raw, this.allowed, new Set(this.runs));
      if (m) onMessage(m);
      else
        log(`[bert-pruner] ignored an invalid message from the ${kind} panel: ${JSON.stringify(raw)?.slice(0, 200)}`);
    });
  }

  post(message: unknown): void {
    void this.panel.webview.postMessage(message);
  }
}

export class Panels implements vscode.Disposable {
  private training: PanelView | undefined;
  /** The training panel's runs (directories) and the builders that take their live events. */
  private builders = new Map<string, SeriesBuilder>();
  /** Per run directory, the events of its latest engine run (merged with its history.jsonl). */
  private readonly live = new Map<string, LiveHistory>();
  private readonly running = new Set<string>();
  private buffered: TrainingMessage[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly deps: PanelsDeps) {
    const { host } = deps;
    this.disposables.push(
      host.onStart((r) => {
        if (!isTraining(r.stage) || !r.runDir) return;
        const dir = path.resolve(r.runDir);
        this.live.set(dir, { since: Date.now(), records: [] });
        this.running.add(dir);
        // The panel follows a training run that starts: it is added to the runs shown.
        if (this.training) this.addRuns([dir]);
      }),
      host.onEnd(({ request }) => {
        if (request.runDir) this.running.delete(path.resolve(request.runDir));
      }),
      host.onEvent(({ event, request }) => {
        if (!request.runDir) return;
        const dir = path.resolve(request.runDir);
        const live = this.live.get(dir);
        const rec = live && eventRecord(event, Date.now());
        if (!live || !rec) return;
        pushLive(live, rec);
        const builder = this.builders.get(dir);
        const change = builder?.apply(rec);
        if (!change || !this.training) return;
        const m = changeMessage(dir, change);
        if (m) this.queue(m);
        else this.queue({ type: 'training-run', run: this.curvesOf(dir, builder!) });
      }),
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPES.training, {
        deserializeWebviewPanel: async (panel, state) => {
          this.adoptTraining(panel, stringList(state, 'runs').filter(isDir));
        },
      }),
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPES.params, {
        deserializeWebviewPanel: async (panel, state) =>
          this.adoptParams(panel, stringList(state, 'dirs').filter(isDir)),
      }),
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPES.report, {
        deserializeWebviewPanel: async (panel, state) => {
          const files = stringList(state, 'files').filter(isFile);
          this.adoptReport(panel, files);
        },
      }),
    );
  }

  // ---- training ------------------------------------------------------------------------------

  /** The runs the training panel shows and those training now: what a picker offers ticked. */
  trainingRuns(): string[] {
    return dedupe([...(this.training?.runs ?? []), ...this.running]);
  }

  /** Show these runs' curves (replacing what the panel showed); none: the runs training now. */
  showTraining(runs: string[] = []): void {
    const dirs = runs.length ? runs.map((r) => path.resolve(r)) : [...this.running];
    if (this.training) {
      this.training.runs.splice(0, this.training.runs.length, ...dedupe(dirs));
      this.sendTraining();
      this.training.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPES.training, 'Training Curves', vscode.ViewColumn.Beside, {
      enableScripts: true,
      retainContextWhenHidden: true,
    });
    this.adoptTraining(panel, dirs);
  }

  private adoptTraining(panel: vscode.WebviewPanel, runs: string[]): void {
    panel.title = 'Training Curves';
    const view = new PanelView(
      panel,
      'training',
      this.deps.context.extensionUri,
      async (m) => {
        if (m.type === 'ready') this.sendTraining();
        else if (m.type === 'remove-run') {
          view.runs.splice(view.runs.indexOf(m.run), 1);
          this.sendTraining();
        } else if (m.type === 'add-run') {
          const picked = await this.deps.pickRuns?.([...view.runs]);
          if (picked?.length && this.training === view) this.addRuns(picked);
        } else if (m.type === 'export') await this.saveExport(m, view.runs[0]);
      },
      (l) => this.deps.host.output.appendLine(l),
      dedupe(runs.map((r) => path.resolve(r))),
    );
    this.training = view;
    panel.onDidDispose(() => {
      if (this.training === view) {
        this.training = undefined;
        this.builders.clear();
      }
    });
  }

  /** Save a chart (PNG) or the series (CSV) where the user says, next to the first run by default. */
  private async saveExport(m: Extract<WebviewMessage, { type: 'export' }>, near?: string): Promise<void> {
    const folder = near ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const uri = await vscode.window.showSaveDialog({
      title: m.format === 'csv' ? 'Export the curves as CSV' : 'Export the chart as PNG',
      defaultUri: folder ? vscode.Uri.file(path.join(folder, m.name)) : undefined,
      filters: m.format === 'csv' ? { CSV: ['csv'] } : { PNG: ['png'] },
    });
    if (!uri) return;
    const bytes =
      m.format === 'csv'
        ? Buffer.from(m.data, 'utf8')
        : Buffer.from(m.data.slice('data:image/png;base64,'.length), 'base64');
    await vscode.workspace.fs.writeFile(uri, bytes);
    void vscode.window.showInformationMessage(`BERT Pruner: saved ${displayPath(uri.fsPath)}.`);
  }

  private addRuns(dirs: string[]): void {
    const view = this.training;
    if (!view) return;
    for (const d of dirs.map((x) => path.resolve(x))) {
      if (view.runs.includes(d)) continue;
      view.runs.push(d);
    }
    this.sendTraining();
  }

  /** Re-read every shown run (history.jsonl, run.json) and send the whole picture. */
  private sendTraining(): void {
    const view = this.training;
    if (!view) return;
    this.builders = new Map();
    this.buffered = [];
    const runs = view.runs.map((dir) => this.loadCurves(dir));
    const title = runs.length ? runs.map((r) => r.label).join(' vs ') : 'Training Curves';
    view.post({ type: 'training-init', title, runs } satisfies TrainingMessage);
  }

  private loadCurves(dir: string): RunCurves {
    const problems: string[] = [];
    const read = (f: string): string | undefined => {
      try {
        return readTail(path.join(dir, f), MAX_HISTORY_BYTES, (mb) =>
          problems.push(`${f}: ${mb} MB; its last 32 MB shown`),
        );
      } catch {
        return undefined;
      }
    };
    let manifest: unknown;
    const text = read('history.jsonl');
    if (text === undefined) {
      try {
        manifest = JSON.parse(read('run.json') ?? 'null');
      } catch (e) {
        problems.push(`run.json: ${(e as Error).message}`);
      }
    }
    const { curves, builder } = runCurves(dir, displayPath(dir), text, manifest, this.live.get(dir));
    this.builders.set(dir, builder);
    curves.problems.unshift(...problems);
    if (curves.series.length === 0 && !problems.length)
      curves.problems.push('no training history and no metrics in run.json yet');
    return curves;
  }

  private curvesOf(dir: string, builder: SeriesBuilder): RunCurves {
    return { id: dir, label: displayPath(dir), source: 'history', series: builder.series(), problems: [] };
  }

  /** Steps arrive up to hundreds a second: post them to the page in batches. */
  private queue(m: TrainingMessage): void {
    this.buffered.push(m);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const batch = mergeSteps(this.buffered);
      this.buffered = [];
      for (const b of batch) this.training?.post(b);
    }, 250);
  }

  // ---- parameters ----------------------------------------------------------------------------

  showParams(dirs: string[]): void {
    const panel = vscode.window.createWebviewPanel(VIEW_TYPES.params, 'Parameters', vscode.ViewColumn.Active, {
      enableScripts: true,
    });
    this.adoptParams(panel, dirs);
  }

  private adoptParams(panel: vscode.WebviewPanel, dirs: string[]): void {
    let current = dirs.slice(0, 2);
    const view = new PanelView(
      panel,
      'params',
      this.deps.context.extensionUri,
      async (m) => {
        if (m.type === 'compare') {
          const other = await this.deps.pickCheckpoint('Compare parameters with which checkpoint?');
          if (!other) return;
          current = [current[0], other].filter(Boolean) as string[];
          void send();
        } else if (m.type === 'open') {
          void vscode.window.showTextDocument(vscode.Uri.file(m.path));
        } else void send();
      },
      (l) => this.deps.host.output.appendLine(l),
    );
    const send = async () => {
      const columns: ParamsColumn[] = [];
      const problems: string[] = [];
      for (const dir of current) {
        const ck = await this.deps.tree.checkpoint(dir);
        if (ck.tree)
          columns.push({
            ...paramsColumn(displayPath(dir), dir, ck.tree),
            configFile: path.join(dir, 'config.json'),
            fileBytes: fileSize(path.join(dir, 'model.safetensors')),
          });
        else problems.push(ck.error ?? `${dir}: unreadable`);
      }
      view.allowed = new Set(current.map((d) => path.join(d, 'config.json')));
      panel.title = columns.length === 2 ? 'Parameters: compare' : `Parameters: ${path.basename(current[0] ?? '')}`;
      view.post({ type: 'params', columns, problems } satisfies ParamsMessage);
    };
  }

  // ---- pruning report ------------------------------------------------------------------------

  /** Open the report panel on a prune-report.json, a sweep.json and/or an evaluation (eval-*.json). */
  showReport(files: string[]): void {
    const title = files.every(isEvaluationFile) ? 'Evaluation' : 'Pruning Report';
    const options = { enableScripts: true };
    const panel = vscode.window.createWebviewPanel(VIEW_TYPES.report, title, vscode.ViewColumn.Active, options);
    this.adoptReport(panel, files);
  }

  private adoptReport(panel: vscode.WebviewPanel, files: string[]): void {
    const view = new PanelView(
      panel,
      'report',
      this.deps.context.extensionUri,
      (m) => {
        if (m.type === 'open') void vscode.window.showTextDocument(vscode.Uri.file(m.path));
        else if (m.type === 'ready') void send();
      },
      (l) => this.deps.host.output.appendLine(l),
    );
    const send = () => {
      const evaluation = files.find(isEvaluationFile);
      const report = files.find((f) => path.basename(f) !== 'sweep.json' && !isEvaluationFile(f));
      const sweep = files.find((f) => path.basename(f) === 'sweep.json');
      const problems: string[] = [];
      const read = (f: string | undefined) => {
        if (!f) return undefined;
        try {
          return readJsonBounded(f, 'json'); // bounded, nesting checked: it is posted to the webview
        } catch (e) {
          problems.push(`${displayPath(f)}: ${(e as Error).message}`);
          return undefined;
        }
      };
      const title =
        report || sweep
          ? `Pruning report: ${displayPath(path.dirname(report ?? sweep ?? ''))}`
          : `Evaluation: ${displayPath(evaluation ?? '')}`;
      const shownFiles = { file: report, sweepFile: sweep, evaluationFile: evaluation };
      const msg = reportMessage(title, read(report), read(sweep), shownFiles, read(evaluation));
      msg.problems.unshift(...problems);
      view.allowed = new Set(files);
      panel.title = report || sweep ? 'Pruning Report' : 'Evaluation';
      view.post(msg);
    };
    // Re-read when the engine rewrites the files (e.g. a sweep adds rows).
    const watchers = files.map((f) => {
      const w = vscode.workspace.createFileSystemWatcher(
        new vscode.RelativePattern(vscode.Uri.file(path.dirname(f)), path.basename(f)),
      );
      w.onDidChange(send);
      w.onDidCreate(send);
      return w;
    });
    panel.onDidDispose(() => watchers.forEach((w) => w.dispose()));
  }

  dispose(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.disposables.forEach((d) => d.dispose());
  }
}

const isTraining = (stage: string) => isStageName(stage) && REGISTRY[stage].trains;

function stringList(state: unknown, key: string): string[] {
  if (typeof state !== 'object' || state === null) return [];
  const v = (state as Record<string, unknown>)[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && path.isAbsolute(x)) : [];
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The most of a history.jsonl the curves panel reads: a long run's is a few MB; a hostile one could be GBs. */
const MAX_HISTORY_BYTES = 32 * 1024 * 1024;

/** A file's size in bytes, or undefined when it is not there. */
function fileSize(file: string): number | undefined {
  try {
    return fs.statSync(file).size;
  } catch {
    return undefined;
  }
}
