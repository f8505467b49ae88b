// The three webview panels (training curves, parameters, pruning report) and their serializers.
// Each panel's page is a bundled script from dist/webview/ plus media/panel.css (panelHtml.ts has
// the CSP). The page keeps what it shows in its webview state, so after a reload VS Code hands that
// state to the serializer, which reopens the panel on the same files (re-read, not trusted).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineHost } from './engineHost';
import { makeNonce, panelHtml } from './panelHtml';
import { isEvaluationFile, mergeSteps, paramsColumn, parseWebviewMessage, reportMessage } from './panelData';
import { TrainingLog } from './panelData';
import type { ParamsColumn, ParamsMessage, TrainingMessage, WebviewMessage } from './panelData';
import type { RunsTreeProvider } from './runsTree';
import { displayPath } from './workspace';
import { isStageName, REGISTRY } from '../engine/stages/registry';

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
  ) {
    const webview = panel.webview;
    webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
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
      const m = parseWebviewMessage(raw, this.allowed);
      if (m) onMessage(m);
      else log(`[bert-pruner] ignored an invalid message from the ${kind} panel: ${JSON.stringify(raw)?.slice(0, 200)}`);
    });
  }

  post(message: unknown): void {
    void this.panel.webview.postMessage(message);
  }
}

export class Panels implements vscode.Disposable {
  private training: PanelView | undefined;
  private readonly trainingLog = new TrainingLog();
  private buffered: TrainingMessage[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly deps: PanelsDeps) {
    const { host } = deps;
    this.disposables.push(
      host.onStart((r) => {
        if (!isTraining(r.stage)) return;
        this.trainingLog.reset(r.title);
        this.buffered = [];
        this.training?.post(this.trainingLog.snapshot());
      }),
      host.onEvent(({ event }) => {
        const m = this.trainingLog.apply(event);
        if (m && this.training) this.queue(m);
      }),
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPES.training, {
        deserializeWebviewPanel: async (panel) => this.adoptTraining(panel),
      }),
      vscode.window.registerWebviewPanelSerializer(VIEW_TYPES.params, {
        deserializeWebviewPanel: async (panel, state) => this.adoptParams(panel, stringList(state, 'dirs').filter(isDir)),
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

  showTraining(): void {
    if (this.training) {
      this.training.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPES.training, 'Training', vscode.ViewColumn.Beside, { enableScripts: true, retainContextWhenHidden: true });
    this.adoptTraining(panel);
  }

  private adoptTraining(panel: vscode.WebviewPanel): void {
    panel.title = 'Training';
    const view = new PanelView(panel, 'training', this.deps.context.extensionUri, (m) => {
      // A restored page shows its saved curves; it only needs the live history if a run is going
      // on (or finished since this window opened).
      if (m.type === 'ready') view.post(this.trainingLog.snapshot());
    }, (l) => this.deps.host.output.appendLine(l));
    this.training = view;
    panel.onDidDispose(() => {
      if (this.training === view) this.training = undefined;
    });
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
    const panel = vscode.window.createWebviewPanel(VIEW_TYPES.params, 'Parameters', vscode.ViewColumn.Active, { enableScripts: true });
    this.adoptParams(panel, dirs);
  }

  private adoptParams(panel: vscode.WebviewPanel, dirs: string[]): void {
    let current = dirs.slice(0, 2);
    const view = new PanelView(panel, 'params', this.deps.context.extensionUri, async (m) => {
      if (m.type === 'compare') {
        const other = await this.deps.pickCheckpoint('Compare parameters with which checkpoint?');
        if (!other) return;
        current = [current[0], other].filter(Boolean) as string[];
        send();
      } else if (m.type === 'open') {
        void vscode.window.showTextDocument(vscode.Uri.file(m.path));
      } else send();
    }, (l) => this.deps.host.output.appendLine(l));
    const send = () => {
      const columns: ParamsColumn[] = [];
      const problems: string[] = [];
      for (const dir of current) {
        const ck = this.deps.tree.checkpoint(dir);
        if (ck.tree) columns.push({ ...paramsColumn(displayPath(dir), dir, ck.tree), configFile: path.join(dir, 'config.json') });
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
    const view = new PanelView(panel, 'report', this.deps.context.extensionUri, (m) => {
      if (m.type === 'open') void vscode.window.showTextDocument(vscode.Uri.file(m.path));
      else if (m.type === 'ready') send();
    }, (l) => this.deps.host.output.appendLine(l));
    const send = () => {
      const evaluation = files.find(isEvaluationFile);
      const report = files.find((f) => path.basename(f) !== 'sweep.json' && !isEvaluationFile(f));
      const sweep = files.find((f) => path.basename(f) === 'sweep.json');
      const problems: string[] = [];
      const read = (f: string | undefined) => {
        if (!f) return undefined;
        try {
          return JSON.parse(fs.readFileSync(f, 'utf8')) as unknown;
        } catch (e) {
          problems.push(`${displayPath(f)}: ${(e as Error).message}`);
          return undefined;
        }
      };
      const title = report || sweep
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
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(f)), path.basename(f)));
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
