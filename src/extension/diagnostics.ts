// Config-file mistakes in the Problems view, each listed once.
//
// Two validators know the config schemas: VS Code's JSON language service (contributes.jsonValidation,
// the same schemas/ the engine uses), which checks a file while it is open in an editor, as the user
// types, and the engine's own validateConfig, which the commands run before starting a stage with a
// config (check) and which a failed run reports (show). The JSON service lists schema mistakes only
// as warnings and offers no fix, yet the engine refuses such a file. The rule:
// - schema mistakes (JSON syntax, unknown keys, values out of range) are errors, published whether
//   the file is open or not: an open config is re-checked as the user types (the same engine
//   validator), and an unknown key close to a known one gets a "did you mean" quick fix
//   (ConfigQuickFix). While open, the JSON service's warning for the same spot shows beside ours.
// - errors only the engine knows (from a failed run: a CSV row, a setting the model cannot honour)
//   are always published, open or not; they are cleared when the file is saved, which re-checks it.
// check() reads a file that VS Code has not loaded from disk, not through openTextDocument: loading it
// would hand it to the JSON service, which would then report it too.
// An unknown key is underlined at the key itself (configFiles.ts pointerRange).
// Beyond the schema, check() lists what only the engine would refuse (configFiles.ts configChecks):
// a count budget that is not a whole number, keep_shape or pruning_method 'masks' with a budget,
// layers or the hidden size, and, for a pruning config whose model the extension knows (the
// checkpoint it was made for or last run on: `modelOf`), targets above what that model has and a
// budget that keeps its whole encoder.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { validateConfig, type ConfigKind } from '../engine/config/validate';
import {
  configChecks,
  didYouMeanFix,
  errorRanges,
  modelShapeOf,
  parseEngineErrors,
  toPublish,
  type ErrorLocation,
  type ModelShape,
  type TextRange,
} from './configFiles';
import { jsonDepthExceeded, MAX_JSON_DEPTH, readTextBounded } from '../engine/io/read';

export function configKind(file: string): ConfigKind | undefined {
  if (file.endsWith('.prune.json')) return 'prune';
  if (file.endsWith('.bert-pruner.json')) return 'settings';
  return undefined;
}

interface FileDiagnostics {
  kind?: ConfigKind; // set while check() last found schema mistakes in it
  schema: vscode.Diagnostic[];
  engine: vscode.Diagnostic[];
  open?: boolean; // whether an editor tab showed the file when it was last published
}

export class ConfigDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection('bert-pruner');
  private readonly files = new Map<string, FileDiagnostics>(); // by fsPath
  private readonly subs: vscode.Disposable[] = [];

  /** `modelOf`: the checkpoint folder a pruning config is for, when the extension knows it. */
  constructor(private readonly modelOf: (file: string) => string | undefined = () => undefined) {
    this.subs.push(
      vscode.workspace.onDidSaveTextDocument((doc) => {
        const entry = this.files.get(doc.uri.fsPath);
        if (!entry) return;
        entry.engine = [];
        const kind = entry.kind ?? configKind(doc.uri.fsPath);
        if (kind) void this.check(doc.uri.fsPath, kind);
        else this.publish(doc.uri.fsPath);
      }),
      // Any tab change (opened, closed, a preview tab showing another file): look at the files we hold.
      vscode.window.tabGroups.onDidChangeTabs(() => {
        for (const [file, entry] of [...this.files]) {
          const open = isOpenInEditor(file);
          if (open === entry.open) continue;
          // Closed: the JSON service no longer reports it; check it again (from disk, unless still loaded).
          if (!open && entry.kind) void this.check(file, entry.kind);
          else this.publish(file);
        }
      }),
      vscode.workspace.onDidDeleteFiles((e) => e.files.forEach((f) => this.forget(f.fsPath))),
      // An open config is checked as it is opened and as the user types.
      vscode.workspace.onDidOpenTextDocument((doc) => this.checkSoon(doc.uri.fsPath)),
      vscode.workspace.onDidChangeTextDocument((e) => this.checkSoon(e.document.uri.fsPath)),
    );
    for (const doc of vscode.workspace.textDocuments) this.checkSoon(doc.uri.fsPath);
  }

  private readonly timers = new Map<string, NodeJS.Timeout>();

  private checkSoon(file: string): void {
    const kind = configKind(file);
    if (!kind) return;
    clearTimeout(this.timers.get(file));
    this.timers.set(
      file,
      setTimeout(() => {
        this.timers.delete(file);
        void this.check(file, kind);
      }, 300),
    );
  }

  /**
   * Check a config file the way the engine will (strict JSON + schema + configChecks, against
   * `model` or the model modelOf knows for it); list what is wrong in Problems (under the rule
   * above). Returns true when the engine will accept it.
   */
  async check(file: string, kind: ConfigKind, model?: string): Promise<boolean> {
    const text = readText(file);
    if (text === undefined) return true; // gone or unreadable: the engine says so itself
    let value: unknown;
    let message: string | undefined;
    try {
      // Nesting first (io/read.ts): neither JSON.parse nor the locators below recurse on its depth.
      const deep = jsonDepthExceeded(text);
      if (deep >= 0) throw new Error(`nested deeper than ${MAX_JSON_DEPTH} levels at position ${deep}`);
      value = JSON.parse(text);
      validateConfig(kind, value, file);
    } catch (e) {
      message = (e as Error).message;
      // JSON.parse's errors name a position; the engine writes them as FILE:LINE:COL lines.
      const m = value === undefined ? /position (\d+)/.exec(message) : null;
      if (value === undefined) {
        const at = m ? Number(m[1]) : 0;
        message = `${file}:${lineCol(text, at)}: invalid JSON: ${message.replace(/\s*\n\s*/g, ' ')}`;
      }
    }
    const locs = message ? parseEngineErrors(message) : [];
    if (value !== undefined) {
      // One error per value: a schema mistake first (the engine's own order).
      const extra = configChecks(kind, value, file, modelShape(model ?? this.modelOf(file)));
      locs.push(...extra.filter((e) => !locs.some((l) => l.pointer === e.pointer)));
    }
    const bad = !!message || locs.length > 0;
    const entry = this.entry(file);
    entry.kind = bad ? kind : undefined;
    entry.schema = bad ? this.diagnostics(text, locs) : [];
    this.publish(file);
    return !bad;
  }

  /** Show the FILE: /pointer: message and FILE:LINE: message lines of a failed run's error. */
  async show(message: string, cwd: string): Promise<number> {
    const byFile = new Map<string, ErrorLocation[]>();
    for (const loc of parseEngineErrors(message)) {
      const file = path.resolve(cwd, loc.file);
      byFile.set(file, [...(byFile.get(file) ?? []), loc]);
    }
    let shown = 0;
    for (const [file, locs] of byFile) {
      const text = readText(file);
      if (text === undefined) continue; // not a text file we can point into (or gone)
      const entry = this.entry(file);
      entry.engine = this.diagnostics(text, locs);
      this.publish(file);
      shown += entry.engine.length;
    }
    return shown;
  }

  dispose(): void {
    this.timers.forEach((t) => clearTimeout(t));
    this.subs.forEach((s) => s.dispose());
    this.collection.dispose();
  }

  private entry(file: string): FileDiagnostics {
    let e = this.files.get(file);
    if (!e) this.files.set(file, (e = { schema: [], engine: [] }));
    return e;
  }

  private forget(file: string): void {
    this.files.delete(file);
    this.collection.delete(vscode.Uri.file(file));
  }

  private publish(file: string): void {
    const e = this.files.get(file);
    const open = isOpenInEditor(file);
    if (e) e.open = open;
    const diags = e ? toPublish(e.schema, e.engine, open) : [];
    if (e && !e.kind && e.engine.length === 0) this.files.delete(file);
    if (diags.length) this.collection.set(vscode.Uri.file(file), diags);
    else this.collection.delete(vscode.Uri.file(file));
  }

  private diagnostics(text: string, locs: ErrorLocation[]): vscode.Diagnostic[] {
    return errorRanges(text, locs).map(({ range, message }) => diagnostic(toRange(range), message));
  }
}

/** The sizes of the model in a checkpoint folder (its config.json), if it can be read. */
function modelShape(dir: string | undefined): ModelShape | undefined {
  if (!dir) return undefined;
  try {
    const text = readTextBounded(path.join(dir, 'config.json'), 'json');
    return jsonDepthExceeded(text) >= 0 ? undefined : modelShapeOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** Whether an editor tab shows the file (then the JSON language service validates it). */
function isOpenInEditor(file: string): boolean {
  return vscode.window.tabGroups.all.some((g) =>
    g.tabs.some((t) => t.input instanceof vscode.TabInputText && t.input.uri.fsPath === file),
  );
}

/** The text VS Code has for the file if it has loaded it (unsaved edits included), else the file on disk. */
function readText(file: string): string | undefined {
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === file);
  if (doc) return doc.getText();
  try {
    return readTextBounded(file, 'json');
  } catch {
    return undefined;
  }
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset).split(/\r?\n/);
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

function toRange(r: TextRange): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

function diagnostic(range: vscode.Range, message: string): vscode.Diagnostic {
  const d = new vscode.Diagnostic(range, message, vscode.DiagnosticSeverity.Error);
  d.source = 'bert-pruner';
  return d;
}

/** The "did you mean" quick fix of an unknown key in a config file (configFiles.ts didYouMeanFix). */
export class ConfigQuickFix implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  provideCodeActions(
    doc: vscode.TextDocument,
    _range: vscode.Range,
    ctx: vscode.CodeActionContext,
  ): vscode.CodeAction[] {
    const out: vscode.CodeAction[] = [];
    for (const d of ctx.diagnostics) {
      if (d.source !== 'bert-pruner') continue;
      const fix = didYouMeanFix(d.message, doc.getText(d.range));
      if (!fix) continue;
      const a = new vscode.CodeAction(fix.title, vscode.CodeActionKind.QuickFix);
      a.edit = new vscode.WorkspaceEdit();
      a.edit.replace(doc.uri, d.range, fix.text);
      a.diagnostics = [d];
      a.isPreferred = true;
      out.push(a);
    }
    return out;
  }
}
