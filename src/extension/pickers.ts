// QuickPicks and input boxes that ask the user for one missing thing each: a run, a data folder,
// a CSV, a checkpoint, a pruning config. Each returns undefined when the user backs out.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkBertFolder } from './hfFolder';
import { presetItems } from './presetInfo';
import type { RunView } from './runModel';
import { checkpointChoices, type CheckpointKind } from './workflow';
import { displayPath, runsRoots, settings } from './workspace';

const EXCLUDE = '{**/node_modules/**,**/.git/**}';

interface Item<T> extends vscode.QuickPickItem {
  value?: T;
  action?: () => Promise<T | undefined>;
}

async function choose<T>(title: string, items: Item<T>[], placeHolder?: string): Promise<T | undefined> {
  const pick = await vscode.window.showQuickPick(items, {
    title,
    placeHolder,
    matchOnDescription: true,
    ignoreFocusOut: true,
  });
  if (!pick) return undefined;
  return pick.action ? pick.action() : pick.value;
}

async function browse(
  title: string,
  folders: boolean,
  filters?: Record<string, string[]>,
): Promise<string | undefined> {
  const uris = await vscode.window.showOpenDialog({
    title,
    canSelectFiles: !folders,
    canSelectFolders: folders,
    canSelectMany: false,
    filters,
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return uris?.[0]?.fsPath;
}

/**
 * "A Hugging Face folder…": a folder dialog; the folder is checked (config.json with model_type bert,
 * weights, vocab.txt; hfFolder.ts) and its parameter tree shown (`show`) before the user confirms it.
 */
function hfFolderItem(show?: (dir: string) => void): Item<string> {
  return {
    label: '$(cloud-download) A Hugging Face folder…',
    detail: 'a BERT folder downloaded from the Hub or saved by save_pretrained',
    action: async () => {
      const dir = await browse('A Hugging Face BERT folder (config.json, weights, vocab.txt)', true);
      if (!dir) return undefined;
      const bad = checkBertFolder(dir);
      if (bad) {
        void vscode.window.showErrorMessage(bad);
        return undefined;
      }
      if (!show) return dir;
      show(dir);
      const ok = await vscode.window.showInformationMessage(
        `Use ${displayPath(dir)}? Its parameters are in the Parameters panel.`,
        { modal: true },
        'Use it',
      );
      return ok === 'Use it' ? dir : undefined;
    },
  };
}

export async function pickRun(runs: RunView[], allowNew: boolean): Promise<string | undefined> {
  const items: Item<string>[] = runs.map((r) => ({
    label: r.name,
    description: displayPath(r.dir),
    detail: r.stages.map((s) => `${s.key} ${s.status}`).join(', '),
    value: r.dir,
  }));
  if (allowNew) items.unshift({ label: '$(add) New run…', action: () => askRunName(runs) });
  if (items.length === 0) {
    void vscode.window.showWarningMessage(
      'BERT Pruner: no runs yet. Start with "Run pipeline" or "Generate corpus & vocab".',
    );
    return undefined;
  }
  return choose('Which run?', items);
}

/**
 * Several runs at once (the training curves overlay them); `picked` start ticked (those shown
 * already, when adding). Undefined when the user backs out, [] when none is ticked.
 */
export async function pickRuns(
  runs: RunView[],
  picked: string[] = [],
  title = 'Show the training curves of which runs?',
): Promise<string[] | undefined> {
  if (runs.length === 0) {
    void vscode.window.showWarningMessage('BERT Pruner: no runs to choose from.');
    return undefined;
  }
  const shown = new Set(picked.map((p) => path.resolve(p)));
  const items = runs.map((r) => ({
    label: r.name,
    description: displayPath(r.dir),
    detail: r.stages.map((s) => `${s.key} ${s.status}`).join(', '),
    picked: shown.has(path.resolve(r.dir)),
    value: r.dir,
  }));
  const picks = await vscode.window.showQuickPick(items, {
    title,
    canPickMany: true,
    matchOnDescription: true,
    ignoreFocusOut: true,
  });
  // [] when accepted with none ticked (the caller says so), undefined when the user backed out.
  return picks?.map((p) => p.value);
}

async function askRunName(runs: RunView[]): Promise<string | undefined> {
  const root = runsRoots()[0];
  if (!root) {
    void vscode.window.showErrorMessage('BERT Pruner: open a folder first; runs are kept in it.');
    return undefined;
  }
  let n = runs.length + 1;
  while (fs.existsSync(path.join(root, `run${n}`))) n++;
  const name = await vscode.window.showInputBox({
    title: 'New run',
    prompt: `The run's folder name under ${displayPath(root)}`,
    value: `run${n}`,
    ignoreFocusOut: true,
    validateInput: (v) =>
      !/^[\w.-]+$/.test(v) || v === '.' || v === '..'
        ? 'letters, digits, - _ . only'
        : fs.existsSync(path.join(root, v, 'run.json'))
          ? 'a run of that name exists'
          : undefined,
  });
  return name ? path.join(root, name) : undefined;
}

/** A folder with train.csv or train.jsonl (and usually a test file): found in the workspace, browsed, or made. */
export async function pickDataFolder(makeDemo: () => Promise<string | undefined>): Promise<string | undefined> {
  const found = await vscode.workspace.findFiles('**/train.{csv,jsonl}', EXCLUDE, 200);
  // runs/<name>/data/train.csv are copies the engine made; the user's data is elsewhere.
  const dirs = [...new Set(found.map((u) => path.dirname(u.fsPath)))].filter(
    (d) => !fs.existsSync(path.join(d, '..', 'run.json')),
  );
  const items: Item<string>[] = dirs.map((d) => ({
    label: displayPath(d),
    description: fs
      .readdirSync(d)
      .filter((f) => /^(train|test)\.(csv|jsonl)$/.test(f))
      .sort((a, b) => b.localeCompare(a))
      .join(', '),
    value: d,
  }));
  items.push({
    label: '$(folder-opened) Browse…',
    action: () => browse('Data folder (with train.csv or train.jsonl)', true),
  });
  items.push({ label: '$(beaker) Create demo data…', action: makeDemo });
  return choose('Which data?', items, 'a folder with train.csv or train.jsonl (and a test file)');
}

export async function pickCsv(title = 'Which data file?'): Promise<string | undefined> {
  const found = await vscode.workspace.findFiles('**/*.{csv,jsonl}', EXCLUDE, 500);
  const items: Item<string>[] = found.map((u) => ({
    label: path.basename(u.fsPath),
    description: displayPath(path.dirname(u.fsPath)),
    value: u.fsPath,
  }));
  items.push({
    label: '$(folder-opened) Browse…',
    action: () => browse('Data file', false, { 'Data (GAIIC csv, csv with a header, jsonl)': ['csv', 'jsonl'] }),
  });
  return choose(title, items);
}

export async function pickCheckpoint(
  runs: RunView[],
  title = 'Which model?',
  showParams?: (dir: string) => void,
  kind: CheckpointKind = 'any',
): Promise<string | undefined> {
  // Only finished checkpoints of the kind asked for (never the one a running prune is writing).
  const items: Item<string>[] = runs.flatMap((r) =>
    checkpointChoices(r, kind).map((c) => ({
      label: `${r.name}: ${path.relative(r.dir, c.dir)}`,
      description: c.stage,
      value: c.dir,
    })),
  );
  items.push({
    label: '$(folder-opened) Another model folder…',
    detail: 'a folder with config.json and model.safetensors',
    action: () => browse('Model folder (config.json + model.safetensors)', true),
  });
  items.push(hfFolderItem(showParams));
  return choose(title, items);
}

/**
 * An optional checkpoint option (fine-tune's --from, re-fine-tune's --teacher): the default (the
 * value the run implies, or the engine's own default) first, then every checkpoint. '' keeps the default.
 */
export async function pickOptionalCheckpoint(
  runs: RunView[],
  title: string,
  current: string | undefined,
  help: string,
  showParams?: (dir: string) => void,
  kind: CheckpointKind = 'any',
): Promise<string | undefined> {
  const items: Item<string>[] = [
    {
      label: current ? `$(check) ${displayPath(current)}` : '$(check) The default',
      description: 'default',
      detail: help,
      value: current ?? '',
    },
    ...runs.flatMap((r) =>
      checkpointChoices(r, kind)
        .filter((c) => c.dir !== current)
        .map((c) => ({ label: `${r.name}: ${path.relative(r.dir, c.dir)}`, description: c.stage, value: c.dir })),
    ),
  ];
  items.push({
    label: '$(folder-opened) Another model folder…',
    detail: 'a folder with config.json and model.safetensors',
    action: () => browse('Model folder (config.json + model.safetensors)', true),
  });
  items.push(hfFolderItem(showParams));
  return choose(title, items);
}

/** An optional *.bert-pruner.json settings override: asked only when the workspace has one. '' = none. */
export async function pickSettingsFile(title: string): Promise<string | undefined> {
  const found = (await vscode.workspace.findFiles('**/*.bert-pruner.json', EXCLUDE, 200)).map((u) => u.fsPath).sort();
  if (found.length === 0) return '';
  const items: Item<string>[] = [
    { label: '$(check) No settings file', description: "the run's settings (or the preset's)", value: '' },
    ...found.map((f) => ({ label: path.basename(f), description: displayPath(path.dirname(f)), value: f })),
  ];
  return choose(title, items);
}

/** A file to write (relative to the workspace folder). */
export async function askOutFile(title: string, value: string): Promise<string | undefined> {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const shown = root && path.isAbsolute(value) ? path.relative(root, value) : value;
  const v = await vscode.window.showInputBox({
    title,
    value: shown,
    prompt: root ? `relative to ${root}` : undefined,
    ignoreFocusOut: true,
    validateInput: (s) => (s.trim() ? undefined : 'a file name'),
  });
  return v === undefined ? undefined : root ? path.resolve(root, v.trim()) : path.resolve(v.trim());
}

export async function pickPruneConfigs(
  many: boolean,
  makeNew: () => Promise<string | undefined>,
): Promise<string[] | undefined> {
  const found = (await vscode.workspace.findFiles('**/*.prune.json', EXCLUDE, 200)).map((u) => u.fsPath).sort();
  if (many) {
    if (found.length === 0) {
      void vscode.window.showWarningMessage(
        'BERT Pruner: a sweep needs *.prune.json files; create some with "New pruning config".',
      );
      return undefined;
    }
    const picks = await vscode.window.showQuickPick(
      found.map((f) => ({
        label: path.basename(f),
        description: displayPath(path.dirname(f)),
        value: f,
        picked: true,
      })),
      { title: 'Sweep over which pruning configs?', canPickMany: true, ignoreFocusOut: true },
    );
    return picks?.length ? picks.map((p) => p.value) : undefined;
  }
  const items: Item<string>[] = found.map((f) => ({
    label: path.basename(f),
    description: displayPath(path.dirname(f)),
    value: f,
  }));
  items.push({ label: '$(new-file) New pruning config…', action: makeNew });
  const one = await choose('Which pruning config?', items);
  return one ? [one] : undefined;
}

export async function pickPreset(): Promise<string | undefined> {
  const def = settings().preset;
  const presets = presetItems(def); // described from the presets' own settings (presetInfo.ts)
  return choose(
    'Which settings preset?',
    presets.map((p) => ({ ...p, value: p.label })),
  );
}

export async function askFolder(title: string, value: string): Promise<string | undefined> {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const v = await vscode.window.showInputBox({
    title,
    value,
    prompt: root ? `relative to ${root}` : undefined,
    ignoreFocusOut: true,
    validateInput: (s) => (s.trim() ? undefined : 'a folder'),
  });
  return v === undefined ? undefined : root ? path.resolve(root, v.trim()) : path.resolve(v.trim());
}
