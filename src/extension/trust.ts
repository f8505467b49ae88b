// What a workspace may decide and what only the user may: the engine starts only in a trusted
// workspace, the node binary must be an absolute path (it is a machine-scoped setting), and a runs
// folder named in workspace settings stays inside the workspace folder. Pure functions (no
// 'vscode' import), so vitest checks them; engineHost.ts and workspace.ts apply them.
import * as path from 'node:path';

export const MANAGE_TRUST = { title: 'Manage Workspace Trust', command: 'workbench.trust.manage' } as const;

export type Gate = { ok: true } | { ok: false; message: string; action: typeof MANAGE_TRUST };

/** Whether an engine process may start: only in a trusted workspace (reading the tree always works). */
export function engineStartGate(isTrusted: boolean, title: string): Gate {
  if (isTrusted) return { ok: true };
  return {
    ok: false,
    message:
      `BERT Pruner: "${title}" was not started: this workspace is in Restricted Mode, where the extension only ` +
      'reads runs and files. Trust the workspace to run the engine.',
    action: MANAGE_TRUST,
  };
}

/** bertPruner.nodePath as fork()'s execPath: empty means VS Code's own; otherwise it must be absolute. */
export function engineExecPath(nodePath: string | undefined): { execPath: string | undefined } | { error: string } {
  const p = (nodePath ?? '').trim();
  if (!p) return { execPath: undefined };
  if (!path.isAbsolute(p)) {
    return {
      error: `bertPruner.nodePath '${p}' is not an absolute path; set the full path of a node binary in user settings.`,
    };
  }
  return { execPath: p };
}

/** What WorkspaceConfiguration.inspect() returns, the parts used here. */
export interface Inspected<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

export const DEFAULT_RUNS_FOLDER = 'runs';

/**
 * The runs folder of the workspace folder `folder`. A value from user (global) settings is the
 * user's own: relative ones resolve against the folder, absolute ones are taken as they are. A
 * value from workspace or folder settings comes with the folder, so it must resolve inside it
 * (no absolute path elsewhere, no '..' out of it); otherwise the default is used and `error` says so.
 */
export function resolveRunsFolder(
  folder: string,
  setting: Inspected<string> | undefined,
): { dir: string; error?: string } {
  const s = setting ?? {};
  const fallback = path.resolve(folder, s.defaultValue || DEFAULT_RUNS_FOLDER);
  const fromWorkspace = s.workspaceFolderValue ?? s.workspaceValue;
  if (fromWorkspace === undefined) {
    const v = s.globalValue;
    return { dir: v ? path.resolve(folder, v) : fallback };
  }
  if (!fromWorkspace) return { dir: fallback };
  const where = s.workspaceFolderValue !== undefined ? 'folder' : 'workspace';
  const dir = path.resolve(folder, fromWorkspace);
  const rel = path.relative(path.resolve(folder), dir);
  if (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel)) return { dir };
  return {
    dir: fallback,
    error:
      `bertPruner.runsFolder '${fromWorkspace}' in the ${where} settings is outside the workspace folder ` +
      `${folder}; using ${fallback} instead. A runs folder outside the workspace can be set in user settings.`,
  };
}
