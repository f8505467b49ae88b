// "Run prune with this config" above the first line of every *.prune.json: a pruning config is
// edited first and pruned with only when the user asks (a new one is never run on creation). Beside
// it, what the config prunes to, read from its keys as the user types ("Prunes gradually to 15% of
// the encoder (heads, FFN, layers, hidden)"; presetInfo.ts describePruneConfig).
import * as vscode from 'vscode';
import { describePruneConfigText } from './presetInfo';

export const RUN_PRUNE_LENS_TITLE = '$(play) Run prune with this config';

export class PruneConfigLens implements vscode.CodeLensProvider {
  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (!doc.uri.fsPath.endsWith('.prune.json')) return [];
    const top = new vscode.Range(0, 0, 0, 0);
    const lenses = [
      new vscode.CodeLens(top, {
        title: RUN_PRUNE_LENS_TITLE,
        tooltip: 'Prune a fine-tuned model with this config (saved first)',
        command: 'bertPruner.runPruneConfig',
        arguments: [doc.uri.fsPath],
      }),
    ];
    const what = describePruneConfigText(doc.getText());
    // A lens without a command is plain text.
    if (what) lenses.push(new vscode.CodeLens(top, { title: what, command: '' }));
    return lenses;
  }
}
