// "Run prune with this config" above the first line of every *.prune.json: a pruning config is
// edited first and pruned with only when the user asks (a new one is never run on creation).
import * as vscode from 'vscode';

export const RUN_PRUNE_LENS_TITLE = '$(play) Run prune with this config';

export class PruneConfigLens implements vscode.CodeLensProvider {
  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (!doc.uri.fsPath.endsWith('.prune.json')) return [];
    return [
      new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), {
        title: RUN_PRUNE_LENS_TITLE,
        tooltip: 'Prune a fine-tuned model with this config (saved first)',
        command: 'bertPruner.runPruneConfig',
        arguments: [doc.uri.fsPath],
      }),
    ];
  }
}
