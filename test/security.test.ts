// What a hostile folder cannot make the engine or the extension do (docs/robustness.md, "Threat
// model"): load native code or run a script found in the working folder, choose the executable,
// point relative library paths into the workspace, or move the runs folder out of it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { enginePackageRoot, trustedCodePath } from '../src/engine/backend/trusted-paths';
import { engineEnv, sanitizeEnvPaths } from '../src/extension/engineClient';
import {
  DEFAULT_RUNS_FOLDER,
  engineExecPath,
  engineStartGate,
  MANAGE_TRUST,
  resolveRunsFolder,
} from '../src/extension/trust';
import { bp, ROOT } from './helpers/cli';

const ADDON = path.join('native', 'build', 'Release', 'bert_native.node');
const tmps: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-sec-'));
  tmps.push(d);
  return d;
};
afterAll(() => {
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
});

/** A folder holding native/build/Release/bert_native.node that is a text file: loading it would fail, naming it. */
function hostileFolder(): string {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'native', 'build', 'Release'), { recursive: true });
  fs.writeFileSync(path.join(dir, ADDON), 'not a shared object: the engine must never dlopen this\n');
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.writeFileSync(path.join(dir, 'scripts', 'torch_bert_bench.py'), 'raise SystemExit("must not run")\n');
  fs.mkdirSync(path.join(dir, 'sub'));
  return dir;
}

/** The CLI's bench on a tiny shape (wasm: it loads the native matmul when it may), in `cwd`. */
function benchIn(cwd: string, native?: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, BERT_PRUNER_BLAS_THREADS: '1' };
  delete env.BERT_PRUNER_NATIVE;
  if (native !== undefined) env.BERT_PRUNER_NATIVE = native;
  const args = ['bench', '--shapes', 'L1-H64-A4-F128', '--steps', '1', '--no-torch', '--backend', 'wasm'];
  return bp(args, cwd, process.execPath, env);
}

describe('native code comes only from the engine package or an absolute BERT_PRUNER_NATIVE', () => {
  it('does not load native/build/Release/bert_native.node from the cwd', async () => {
    const dir = hostileFolder();
    const r = await benchIn(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(dir);
    expect(r.stdout + r.stderr).not.toMatch(/did not load/);
  });

  it('refuses a relative BERT_PRUNER_NATIVE with one warning line, without resolving it', async () => {
    const dir = hostileFolder();
    const r = await benchIn(path.join(dir, 'sub'), path.join('..', ADDON));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(dir);
    const warning = /warning: BERT_PRUNER_NATIVE=.* is not an absolute path/;
    const warnings = r.stderr.split('\n').filter((l) => warning.test(l));
    expect(warnings).toHaveLength(1);
  });

  it("dawn.node (the webgpu backend) comes from the package's own node_modules, never the cwd's", async () => {
    const dir = hostileFolder();
    const planted = path.join(dir, 'node_modules', 'webgpu', 'dist', `${process.platform}-${process.arch}`);
    fs.mkdirSync(planted, { recursive: true });
    fs.writeFileSync(path.join(planted, 'dawn.node'), 'not a shared object: the engine must never dlopen this\n');
    const env: NodeJS.ProcessEnv = { ...process.env, BERT_PRUNER_DAWN: path.join('node_modules', 'x.node') };
    const args = ['bench', '--shapes', 'L1-H64-A4-F128', '--steps', '1', '--no-torch'];
    const r = await bp(args, dir, process.execPath, env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(dir);
    expect(
      r.stderr.split('\n').filter((l) => /warning: BERT_PRUNER_DAWN=.* is not an absolute path/.test(l)),
    ).toHaveLength(1);
  });

  it('trustedCodePath: a fixed path in the package, from dist/ or src/engine/backend/ only', () => {
    expect(enginePackageRoot(path.join('/opt', 'ext', 'dist'))).toBe(path.join('/opt', 'ext'));
    expect(enginePackageRoot(path.join('/opt', 'ext', 'src', 'engine', 'backend'))).toBe(path.join('/opt', 'ext'));
    expect(enginePackageRoot(path.join('/home', 'u', 'repo'))).toBeNull();
    expect(enginePackageRoot('dist')).toBeNull(); // relative: never
    expect(enginePackageRoot()).toBe(ROOT); // this module, from the sources

    const dir = hostileFolder();
    // Planted in a parent of the module folder: not found (no walk up).
    const r = trustedCodePath(ADDON, { moduleDir: path.join(dir, 'sub', 'src', 'engine', 'backend') });
    expect(r.file).toBeNull();
    const inPackage = trustedCodePath(ADDON, { moduleDir: path.join(dir, 'dist') });
    expect(inPackage).toEqual({ file: path.join(dir, ADDON), from: 'package' });
    // The bench's PyTorch script: from the package, never from the cwd.
    const script = trustedCodePath(path.join('scripts', 'torch_bert_bench.py'));
    if (script.file !== null) expect(script.file.startsWith(ROOT + path.sep)).toBe(true);

    const envName = 'BERT_PRUNER_NATIVE';
    expect(trustedCodePath(ADDON, { envName, envValue: '0' })).toMatchObject({ file: null, reason: /=0/ });
    const rel = trustedCodePath(ADDON, { envName, envValue: ADDON, moduleDir: path.join(dir, 'dist') });
    expect(rel).toMatchObject({ file: null, warning: expect.stringMatching(/not an absolute path/) });
    const abs = path.join(dir, 'x.node');
    expect(trustedCodePath(ADDON, { envName, envValue: abs })).toEqual({ file: abs, from: 'env' });
  });
});

describe("the engine's environment", () => {
  it('drops empty and relative LD_LIBRARY_PATH / PATH entries and a relative BERT_PRUNER_NATIVE', () => {
    const posix = path.posix;
    expect(sanitizeEnvPaths({ LD_LIBRARY_PATH: '/a::/b' }, posix)).toEqual({ LD_LIBRARY_PATH: '/a:/b' });
    expect(sanitizeEnvPaths({ LD_LIBRARY_PATH: ':/a' }, posix)).toEqual({ LD_LIBRARY_PATH: '/a' });
    expect(sanitizeEnvPaths({ LD_LIBRARY_PATH: '/a:' }, posix)).toEqual({ LD_LIBRARY_PATH: '/a' });
    expect(sanitizeEnvPaths({ LD_LIBRARY_PATH: 'lib:./x:/usr/lib' }, posix)).toEqual({ LD_LIBRARY_PATH: '/usr/lib' });
    expect(sanitizeEnvPaths({ LD_LIBRARY_PATH: ':', DYLD_LIBRARY_PATH: '.' }, posix)).toEqual({});
    expect(sanitizeEnvPaths({ PATH: '/usr/bin:.:bin:' }, posix)).toEqual({ PATH: '/usr/bin' });
    expect(sanitizeEnvPaths({ BERT_PRUNER_NATIVE: 'native/x.node' }, posix)).toEqual({});
    const switches = { BERT_PRUNER_NATIVE: '0', BERT_PRUNER_BLAS_THREADS: '2' };
    expect(sanitizeEnvPaths(switches, posix)).toEqual(switches);
    const files = { BERT_PRUNER_NATIVE: '/opt/x.node', BERT_PRUNER_TORCH_PYTHON: 'python3' };
    expect(sanitizeEnvPaths(files, posix)).toEqual({ BERT_PRUNER_NATIVE: '/opt/x.node' });
    expect(sanitizeEnvPaths({ PATH: 'C:\\bin;;bin' }, path.win32)).toEqual({ PATH: 'C:\\bin' });
  });

  it('engineEnv applies it after the allow-list', () => {
    const env = engineEnv({ PATH: '/bin', LD_LIBRARY_PATH: '/l::', BERT_PRUNER_NATIVE: 'r.node', NODE_OPTIONS: '-r' });
    if (path.delimiter === ':') expect(env).toEqual({ PATH: '/bin', LD_LIBRARY_PATH: '/l', ELECTRON_RUN_AS_NODE: '1' });
    expect(env.BERT_PRUNER_NATIVE).toBeUndefined();
  });
});

describe('the extension: trust, the node binary, the runs folder', () => {
  it('starts no engine in an untrusted workspace, and offers to manage trust', () => {
    expect(engineStartGate(true, 'Pretrain runs/quick')).toEqual({ ok: true });
    const g = engineStartGate(false, 'Pretrain runs/quick');
    expect(g).toMatchObject({ ok: false, action: MANAGE_TRUST });
    expect(MANAGE_TRUST).toEqual({ title: 'Manage Workspace Trust', command: 'workbench.trust.manage' });
    if (!g.ok) expect(g.message).toMatch(/Restricted Mode/);
  });

  it('bertPruner.nodePath must be absolute', () => {
    expect(engineExecPath('')).toEqual({ execPath: undefined });
    expect(engineExecPath(undefined)).toEqual({ execPath: undefined });
    const abs = path.resolve('/usr/bin/node');
    expect(engineExecPath(abs)).toEqual({ execPath: abs });
    for (const rel of ['node', './node', 'bin/node', '../node']) {
      expect(engineExecPath(rel)).toMatchObject({ error: /not an absolute path/ });
    }
  });

  it('a runs folder from workspace settings stays inside the workspace folder; user settings may go elsewhere', () => {
    const ws = path.resolve('/ws/proj');
    const def = { defaultValue: DEFAULT_RUNS_FOLDER };
    const fallback = path.join(ws, 'runs');
    expect(resolveRunsFolder(ws, def)).toEqual({ dir: fallback });
    expect(resolveRunsFolder(ws, undefined)).toEqual({ dir: fallback });
    const inside = path.join(ws, 'out', 'runs');
    expect(resolveRunsFolder(ws, { ...def, workspaceValue: 'out/runs' })).toEqual({ dir: inside });
    expect(resolveRunsFolder(ws, { ...def, workspaceFolderValue: 'a/../b' })).toEqual({ dir: path.join(ws, 'b') });
    expect(resolveRunsFolder(ws, { ...def, workspaceValue: path.join(ws, 'r') })).toEqual({ dir: path.join(ws, 'r') });
    for (const bad of ['..', '../other', 'a/../../x', path.resolve('/etc'), path.resolve('/ws/proj-evil')]) {
      for (const where of ['workspaceValue', 'workspaceFolderValue'] as const) {
        const r = resolveRunsFolder(ws, { ...def, globalValue: '/home/u/runs', [where]: bad });
        expect(r.dir).toBe(fallback);
        expect(r.error).toMatch(/outside the workspace folder.*user settings/);
      }
    }
    // The user's own settings: taken as they are.
    const data = path.resolve('/data/runs');
    expect(resolveRunsFolder(ws, { ...def, globalValue: data })).toEqual({ dir: data });
    const shared = path.resolve(ws, '..', 'shared-runs');
    expect(resolveRunsFolder(ws, { ...def, globalValue: '../shared-runs' })).toEqual({ dir: shared });
  });
});

describe('package.json: what a workspace may set', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties;

  it('the node binary is a machine setting, restricted in untrusted workspaces; no virtual workspaces', () => {
    expect(props['bertPruner.nodePath'].scope).toBe('machine');
    const u = pkg.capabilities.untrustedWorkspaces;
    expect(u.supported).toBe('limited');
    const restricted = ['bertPruner.nodePath', 'bertPruner.runsFolder'];
    expect(u.restrictedConfigurations).toEqual(expect.arrayContaining(restricted));
    for (const k of u.restrictedConfigurations) expect(props[k]).toBeDefined();
    expect(typeof u.description).toBe('string');
    expect(pkg.capabilities.virtualWorkspaces).toBe(false);
  });
});
