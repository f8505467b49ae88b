// Runs engine stages for the commands: forks dist/engine.js per run (engineClient.ts), shows
// progress as a cancellable notification and in the status bar, writes everything to the
// "BERT Pruner" output channel, and turns the outcome into a message. One run at a time per
// workspace, unless the user confirms another.
import { fork } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineEvent } from '../engine/protocol';
import { EngineRun, engineEnv, type RunOutcome } from './engineClient';
import { REGISTRY, stageDef, type StageName } from '../engine/stages/registry';
import { engineEventLog, outcomeLevel, rawLineLevel, writeLog } from './engineLog';
import { describeProgress, offersForce, overallPercent, quote, statusBarText } from './progress';
import { engineExecPath, engineStartGate } from './trust';
import { settings } from './workspace';
import { formatSeconds } from './runModel';
import { cancelNeedsConfirm, statusLabel } from './workflow';

export interface StartRequest {
  stage: StageName;
  args: string[]; // as the CLI takes them after the stage name (without --backend: added here)
  cwd: string; // the workspace folder: relative paths in args resolve against it
  title: string; // e.g. "Pretrain runs/quick"
  runDir?: string;
  /**
   * Progress in a notification too: only for work the user started from a notification (its
   * Resume button). Otherwise progress shows in one place, the status bar and the Runs view.
   */
  notify?: boolean;
  /**
   * Who tells the user the stage finished: the command that started it, with the next step
   * (commands.ts). Without it the host says "finished" itself.
   */
  onDone?: () => void;
}

export interface RunEvent {
  run: EngineRun;
  request: StartRequest;
  event: EngineEvent;
}

interface Active {
  run: EngineRun;
  request: StartRequest;
  progress: string;
  /** When it started (Cancel asks first after a minute). */
  started: number;
  /** The stage now running and its own percent, for the status bar's labelled text. */
  stage?: string;
  percent?: number;
  /** A multi-stage command's overall percent (the pipeline), when known. */
  overall?: number;
  /** The engine's backend label (its 'backend' event), e.g. `webgpu (NVIDIA H200)`. */
  backend?: string;
  /** The precision the engine runs in (its 'backend' event). */
  precision?: 'fp32' | 'mixed';
}

export class EngineHost implements vscode.Disposable {
  private readonly active = new Map<number, Active>();
  private readonly statusBar = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
  private readonly events = new vscode.EventEmitter<RunEvent>();
  private readonly starts = new vscode.EventEmitter<StartRequest>();
  private readonly ends = new vscode.EventEmitter<{ request: StartRequest; outcome: RunOutcome }>();
  /** Every engine event of every run (panels and the tree listen). */
  readonly onEvent = this.events.event;
  readonly onStart = this.starts.event;
  readonly onEnd = this.ends.event;

  constructor(
    private readonly extensionPath: string,
    /** A log channel (levels: engineLog.ts); still an OutputChannel for appendLine and show. */
    readonly output: vscode.LogOutputChannel,
    /** Called with the message of a failed run whose cause is the user's input (for diagnostics). */
    private readonly onUserError: (message: string) => void,
  ) {
    this.statusBar.name = 'BERT Pruner';
    this.statusBar.command = 'bertPruner.showLog';
  }

  get busy(): boolean {
    return this.active.size > 0;
  }

  /** Run a stage to its end; resolves with the outcome, or undefined when it was not started (declined, untrusted). */
  async start(request: StartRequest): Promise<RunOutcome | undefined> {
    // Restricted Mode: nothing runs but reading the tree and the panels (trust.ts).
    const gate = engineStartGate(vscode.workspace.isTrusted, request.title);
    if (!gate.ok) {
      void vscode.window.showWarningMessage(gate.message, gate.action.title).then((choice) => {
        if (choice === gate.action.title) void vscode.commands.executeCommand(gate.action.command);
      });
      return undefined;
    }
    const exec = engineExecPath(settings().nodePath);
    if ('error' in exec) {
      void vscode.window.showErrorMessage(`BERT Pruner: ${exec.error}`);
      return undefined;
    }
    if (this.busy) {
      const running = [...this.active.values()].map((a) => a.request.title).join(', ');
      const choice = await vscode.window.showWarningMessage(
        `BERT Pruner is already running ${running}. Start "${request.title}" as well?`,
        { modal: true, detail: 'Two runs share the CPU (and GPU) and each gets slower.' },
        'Start Another',
      );
      if (choice !== 'Start Another') return undefined;
    }
    const { backend, precision } = settings();
    const args = [
      ...request.args,
      ...(backend && backend !== 'auto' && !request.args.includes('--backend') ? ['--backend', backend] : []),
      ...(precision && precision !== 'fp32' && !request.args.includes('--precision') ? ['--precision', precision] : []),
    ];
    const run = this.spawn(request.stage, args, request.cwd, exec.execPath);
    const active: Active = { run, request, progress: 'starting', started: Date.now() };
    this.active.set(run.id, active);
    this.setRunning();
    this.output.info(`=== ${request.title}: bert-pruner ${request.stage} ${args.map(quote).join(' ')}`);
    this.starts.fire(request);
    this.updateStatusBar();

    const follow = async (progress?: vscode.Progress<{ message?: string; increment?: number }>) => {
      let reported = 0;
      let current: string | undefined;
      const steps = stageDef(request.stage).steps;
      const sub = this.onEvent(({ run: r, event }) => {
        if (r !== run) return;
        if (event.type === 'stage-start') current = event.stage;
        const p = describeProgress(event);
        if (!p) return;
        active.progress = p.message;
        if (current) active.stage = current;
        if (p.percent !== undefined) active.percent = p.percent;
        // A notification's bar only moves forward: a single stage's percent drives it; a
        // pipeline's is its overall share (each of its stages an equal part).
        const pct = steps ? overallPercent(steps, current, p.percent ?? 0) : p.percent;
        if (steps && pct !== undefined) active.overall = pct;
        let inc: number | undefined;
        if (pct !== undefined && pct > reported) {
          inc = pct - reported;
          reported = pct;
        }
        progress?.report({ message: p.message, increment: inc });
        this.updateStatusBar();
      });
      try {
        // The Runs view shows that something runs (its progress bar), for as long as it runs.
        void vscode.window.withProgress({ location: { viewId: 'bertPruner.runs' } }, () => run.outcome);
        return await run.outcome;
      } finally {
        sub.dispose();
      }
    };
    // One place for progress (VS Code's UX guidelines): the status bar and the view; a notification
    // only when the work was started from one.
    const outcome = request.notify
      ? await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `BERT Pruner: ${request.title}`, cancellable: true },
          (progress, token) => {
            token.onCancellationRequested(() => void this.cancelRun(active));
            return follow(progress);
          },
        )
      : await follow();
    this.active.delete(run.id);
    this.setRunning();
    this.updateStatusBar();
    this.output[outcomeLevel(outcome.status)](`=== ${request.title}: ${outcome.status}`);
    this.ends.fire({ request, outcome });
    void this.announce(request, outcome);
    return outcome;
  }

  /** Cancel the runs in flight (asking which when there are several). */
  async cancel(): Promise<void> {
    const runs = [...this.active.values()];
    if (runs.length === 0) {
      void vscode.window.showInformationMessage('BERT Pruner: nothing is running.');
      return;
    }
    let target = runs;
    if (runs.length > 1) {
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'All runs', a: undefined as Active | undefined },
          ...runs.map((a) => ({ label: a.request.title, description: a.progress, a })),
        ],
        { title: 'Cancel which run?' },
      );
      if (!pick) return;
      target = pick.a ? [pick.a] : runs;
    }
    for (const a of target) await this.cancelRun(a);
  }

  /** Cancel one run; after a minute of work, only once the user confirms (its last checkpoint is kept). */
  private async cancelRun(a: Active): Promise<void> {
    if (cancelNeedsConfirm(a.started, Date.now())) {
      const resumable = REGISTRY[a.request.stage].resumable;
      const sure = await vscode.window.showWarningMessage(
        `Cancel ${a.request.title}? It has run for ${formatSeconds((Date.now() - a.started) / 1000)}.`,
        {
          modal: true,
          detail: resumable
            ? 'Its last epoch checkpoint is kept: Resume continues from there.'
            : 'Its work so far is lost.',
        },
        'Cancel Run',
      );
      if (sure !== 'Cancel Run') return;
    }
    if (!this.active.has(a.run.id)) return;
    this.output.info(`[bert-pruner] cancel requested: ${a.request.title}`);
    a.run.cancel();
  }

  dispose(): void {
    for (const a of this.active.values()) a.run.dispose();
    this.statusBar.dispose();
    this.events.dispose();
    this.starts.dispose();
    this.ends.dispose();
  }

  private spawn(stage: StageName, args: string[], cwd: string, execPath: string | undefined): EngineRun {
    const script = path.join(this.extensionPath, 'dist', 'engine.js');
    // Inside VS Code, fork() runs the script with VS Code's own Electron binary in node mode; a
    // user who needs a native tfjs backend (tensorflow-gpu) points bertPruner.nodePath at a node
    // (machine scope: user settings only; an absolute path, checked in start()).
    // bertPruner.webgpuAdapter becomes BERT_PRUNER_WEBGPU_ADAPTER (engineEnv), read per run.
    const env = engineEnv(process.env, { webgpuAdapter: settings().webgpuAdapter });
    const child = fork(script, [], { cwd, silent: true, execPath, env });
    const run: EngineRun = new EngineRun(child, stage, args, {
      onEvent: (event) => {
        writeLog(this.output, engineEventLog(event));
        const active = this.active.get(run.id);
        if (active && event.type === 'backend') {
          active.backend = event.backend;
          active.precision = event.precision;
          this.updateStatusBar();
        }
        if (active) this.events.fire({ run, request: active.request, event });
      },
      onLog: (line, source) => this.output[rawLineLevel(source)](line),
      readyTimeoutMs: 120_000,
      cancelGraceMs: 60_000,
    });
    return run;
  }

  /** The `bertPruner.running` context key: Cancel shows only while something runs. */
  private setRunning(): void {
    void vscode.commands.executeCommand('setContext', 'bertPruner.running', this.active.size > 0);
  }

  private updateStatusBar(): void {
    const runs = [...this.active.values()];
    if (runs.length === 0) {
      this.statusBar.hide();
      return;
    }
    const { text, tooltip } = statusBarText(
      runs.map((a) => ({
        stage: a.request.stage,
        title: a.request.title,
        progress: a.progress,
        overall: a.overall,
        backend: a.backend,
        precision: a.precision,
        label: statusLabel({
          target: a.request.runDir ? path.basename(a.request.runDir) : '',
          stage: a.stage ?? a.request.stage,
          steps: stageDef(a.request.stage).steps,
          percent: a.percent,
        }),
      })),
    );
    this.statusBar.text = text;
    this.statusBar.tooltip = tooltip;
    this.statusBar.show();
  }

  private async announce(request: StartRequest, outcome: RunOutcome): Promise<void> {
    const showLog = 'Show Log';
    if (outcome.status === 'done') {
      if (request.onDone) request.onDone();
      else void vscode.window.showInformationMessage(`BERT Pruner: ${request.title} finished.`);
    } else if (outcome.status === 'cancelled') {
      const resume = 'Resume';
      const canResume = REGISTRY[request.stage].resumable;
      const choice = await vscode.window.showInformationMessage(
        `BERT Pruner: ${request.title} was cancelled.${canResume ? ' Its last checkpoint was kept.' : ''}`,
        ...(canResume ? [resume] : []),
      );
      // Started from this notification: its progress shows in one too.
      if (choice === resume)
        void this.start({
          ...request,
          notify: true,
          args: request.args.includes('--resume') ? request.args : [...request.args, '--resume'],
        });
    } else if (outcome.status === 'failed') {
      if (outcome.user) this.onUserError(outcome.message);
      // The engine refused to replace something it did not make: offer the flag it names, once asked.
      const replace = outcome.user && offersForce(outcome.message, request.args) ? 'Replace (--force)' : undefined;
      const choice = await vscode.window.showErrorMessage(
        `BERT Pruner: ${request.title} failed: ${outcome.message}`,
        ...(replace ? [replace] : []),
        showLog,
      );
      if (choice === showLog) this.output.show(true);
      if (replace && choice === replace) {
        const sure = await vscode.window.showWarningMessage(
          `Replace what bert-pruner did not make? ${outcome.message.split('\n')[0]}`,
          { modal: true },
          'Replace',
        );
        if (sure === 'Replace') void this.start({ ...request, args: [...request.args, '--force'] });
      }
    } else {
      const choice = await vscode.window.showErrorMessage(
        `BERT Pruner: the engine crashed during ${request.title}. ${outcome.message.split('\n')[0]}`,
        showLog,
      );
      if (choice === showLog) this.output.show(true);
    }
  }
}
