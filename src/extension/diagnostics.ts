// Engine-side validation errors as editor diagnostics. The JSON language service already underlines
// schema errors while typing (contributes.jsonValidation, same schemas); these are the errors the
// engine itself reported, from a failed run or from the check the commands make before starting a
// run with a config. They stay until the file is saved again, when it is re-checked.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { validateConfig, type ConfigKind } from '../engine/config/validate';
import { parseEngineErrors, pointerRange, type ErrorLocation } from './configFiles';

export function configKind(file: string): ConfigKind | undefined {
  if (file.endsWith('.prune.json')) return 'prune';
  if (file.endsWith('.bert-pruner.json')) return 'settings';
  return undefined;
}

export class ConfigDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection('bert-pruner');
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.subs.push(
      vscode.workspace.onDidSaveTextDocument((doc) => {
        const kind = configKind(doc.uri.fsPath);
        if (kind && this.collection.has(doc.uri)) void this.check(doc.uri.fsPath, kind);
      }),
      vscode.workspace.onDidDeleteFiles((e) => e.files.forEach((f) => this.collection.delete(f))),
    );
  }

  /**
   * Check a config file the way the engine will (strict JSON + schema); show what is wrong as
   * diagnostics. Returns true when the engine will accept it.
   */
  async check(file: string, kind: ConfigKind): Promise<boolean> {
    const uri = vscode.Uri.file(file);
    const doc = await vscode.workspace.openTextDocument(uri);
    const text = doc.getText();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      const m = /position (\d+)/.exec((e as Error).message);
      const at = doc.positionAt(m ? Number(m[1]) : 0);
      this.collection.set(uri, [diagnostic(new vscode.Range(at, at.translate(0, 1)), `invalid JSON: ${(e as Error).message}`)]);
      return false;
    }
    try {
      validateConfig(kind, value, file);
      this.collection.delete(uri);
      return true;
    } catch (e) {
      await this.show((e as Error).message, path.dirname(file));
      return false;
    }
  }

  /** Show the FILE: /pointer: message and FILE:LINE: message lines of an engine error. */
  async show(message: string, cwd: string): Promise<number> {
    const byFile = new Map<string, ErrorLocation[]>();
    for (const loc of parseEngineErrors(message)) {
      const file = path.resolve(cwd, loc.file);
      byFile.set(file, [...(byFile.get(file) ?? []), loc]);
    }
    let shown = 0;
    for (const [file, locs] of byFile) {
      let doc: vscode.TextDocument;
      try {
        doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
      } catch {
        continue; // not a text file we can point into (or gone)
      }
      const text = doc.getText();
      const diags = locs.map((loc) => {
        if (loc.pointer !== undefined) {
          const r = pointerRange(text, loc.pointer, loc.message);
          return diagnostic(new vscode.Range(doc.positionAt(r.start), doc.positionAt(r.end)), loc.message);
        }
        const line = Math.min(Math.max((loc.line ?? 1) - 1, 0), Math.max(doc.lineCount - 1, 0));
        const range = loc.col ? new vscode.Range(line, loc.col - 1, line, loc.col) : doc.lineAt(line).range;
        return diagnostic(range, loc.message);
      });
      this.collection.set(doc.uri, diags);
      shown += diags.length;
    }
    return shown;
  }

  dispose(): void {
    this.subs.forEach((s) => s.dispose());
    this.collection.dispose();
  }
}

function diagnostic(range: vscode.Range, message: string): vscode.Diagnostic {
  const d = new vscode.Diagnostic(range, message, vscode.DiagnosticSeverity.Error);
  d.source = 'bert-pruner';
  return d;
}
