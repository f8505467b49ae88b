// The extension's entry point: it only wires the parts together. Everything it registers is
// declared in package.json (commands, the "BERT Pruner" view container and its Runs view, menus,
// settings, jsonValidation for *.prune.json and *.bert-pruner.json).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { ConfigDiagnostics, ConfigQuickFix } from './diagnostics';
import { EngineHost } from './engineHost';
import { Panels } from './panels';
import { pickCheckpoint, pickRuns } from './pickers';
import { PruneConfigLens } from './pruneLens';
import { RunsTreeProvider } from './runsTree';
import { workspaceRoot } from './workspace';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('BERT Pruner', { log: true });
  // The checkpoint each pruning config was made for or last run on: its targets are checked against it.
  const configModels = new Map<string, string>();
  const diagnostics = new ConfigDiagnostics((file) => configModels.get(file));
  const host = new EngineHost(
    context.extensionPath,
    output,
    (message) => void diagnostics.show(message, workspaceRoot() ?? process.cwd()),
  );
  const tree = new RunsTreeProvider();
  const panels = new Panels({
    context,
    host,
    tree,
    pickCheckpoint: (title) => pickCheckpoint(tree.runs(), title),
    pickRuns: (shown) => {
      const others = tree.runs().filter((r) => !shown.includes(path.resolve(r.dir)));
      return pickRuns(others, [], 'Add which runs to the training curves?');
    },
  });
  context.subscriptions.push(
    output,
    diagnostics,
    host,
    tree,
    panels,
    vscode.window.createTreeView('bertPruner.runs', { treeDataProvider: tree, showCollapseAll: true }),
    // run.json changes at every stage boundary and checkpoint. The file watcher sees those writes
    // where the platform delivers file events; the engine's own events say the same thing always.
    host.onEvent(({ event }) => {
      if (event.type === 'stage-start' || event.type === 'stage-end' || event.type === 'checkpoint') tree.refreshSoon();
    }),
    host.onEnd(() => tree.refreshSoon()),
  );
  context.subscriptions.push(
    vscode.languages.registerCodeLensProvider({ pattern: '**/*.prune.json' }, new PruneConfigLens()),
    vscode.languages.registerCodeActionsProvider(
      [{ pattern: '**/*.prune.json' }, { pattern: '**/*.bert-pruner.json' }],
      new ConfigQuickFix(),
      { providedCodeActionKinds: ConfigQuickFix.kinds },
    ),
  );
  registerCommands(context, { host, tree, panels, diagnostics, configModels });
}

export function deactivate(): void {
  // Disposables (including the engine processes of runs in flight) go with context.subscriptions.
}
