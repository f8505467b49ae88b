// Where things are in the user's workspace, and the extension's settings (package.json
// contributes.configuration, section "bertPruner").
import * as vscode from 'vscode';
import { resolveRunsFolder } from './trust';

export const SECTION = 'bertPruner';

export function settings() {
  const c = vscode.workspace.getConfiguration(SECTION);
  return {
    runsFolder: c.get<string>('runsFolder', 'runs'),
    backend: c.get<string>('backend', 'auto'),
    precision: c.get<string>('precision', 'fp32'),
    nodePath: c.get<string>('nodePath', ''),
    webgpuAdapter: c.get<string>('webgpuAdapter', ''),
    preset: c.get<string>('preset', 'quick'),
  };
}

/** The workspace folder runs live in: the one holding `path`, else the first. */
export function workspaceRoot(forPath?: string): string | undefined {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (forPath) {
    const f = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(forPath));
    if (f) return f.uri.fsPath;
  }
  return folders[0]?.uri.fsPath;
}

const warned = new Set<string>();

/**
 * Every runs folder: `<folder>/<bertPruner.runsFolder>` of each workspace folder. A value from
 * workspace settings that leads out of its folder is refused (trust.ts): the default is used and
 * a warning says so, once per value.
 */
export function runsRoots(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => {
    const setting = vscode.workspace.getConfiguration(SECTION, f.uri).inspect<string>('runsFolder');
    const r = resolveRunsFolder(f.uri.fsPath, setting);
    if (r.error && !warned.has(r.error)) {
      warned.add(r.error);
      void vscode.window.showWarningMessage(r.error);
    }
    return r.dir;
  });
}

/** A path as the user reads it: relative to its workspace folder when inside one. */
export function displayPath(p: string): string {
  return vscode.workspace.asRelativePath(p, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
}
