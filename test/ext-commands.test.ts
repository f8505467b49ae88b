// The commands' arguments (what each stage needs, what a run implies, the CLI args they become,
// checked against the engine's own argument parser), progress text, and package.json: every
// command the code registers is declared there, and the menus' `when` clauses match the tree's
// contextValues.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '../src/engine/commands';
import { describeProgress, formatTable, offersForce, shortProgress, statusBarText } from '../src/extension/progress';
import { runTooltip, runView, stageContextValue } from '../src/extension/runModel';
import { BACKEND_NAMES } from '../src/engine/backend/index';
import {
  BACKEND_CHOICES,
  BACKEND_DESCRIPTIONS,
  backendPickedMessage,
  backendPickItems,
  shortBackendLabel,
} from '../src/extension/backends';
import { REGISTRY, STAGE_NAMES } from '../src/engine/stages/registry';
import {
  checkpointOption,
  evaluationFile,
  inferRun,
  missing,
  needs,
  offers,
  resumeArgs,
  stageArgs,
  withRunDefaults,
  type Selection,
} from '../src/extension/stageArgs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-cmd-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const full: Selection = {
  run: '/ws/runs/a',
  data: '/ws/data/demo',
  model: '/ws/runs/a/finetune',
  'prune-config': '/ws/configs/p.prune.json',
  configs: ['/ws/c1.prune.json', '/ws/c2.prune.json'],
  out: '/ws/runs/a/pruned',
  preset: 'tiny',
};

describe('stage arguments', () => {
  it('every stage builds args the engine parser accepts, with what it needs', () => {
    for (const stage of STAGE_NAMES) {
      const sel: Selection = {};
      for (const k of needs(stage)) sel[k] = full[k];
      const args = stageArgs(stage, sel);
      const parsed = parse(stage, args) as Record<string, unknown>;
      for (const k of needs(stage)) expect(parsed[k], `${stage} --${k}`).toEqual(full[k]);
    }
  });

  it('names what is missing and refuses to build without it', () => {
    expect(missing('prune', { model: '/m' })).toEqual(['prune-config', 'out']);
    expect(missing('prune-sweep', { model: '/m', run: '/r', configs: [] })).toEqual(['configs']);
    expect(() => stageArgs('evaluate', { model: '/m' })).toThrow(/evaluate: missing data/);
  });

  it('passes options a stage takes beyond its needs, switches as flags', () => {
    expect(stageArgs('pipeline', { data: '/d', run: '/r', preset: 'tiny' })).toEqual([
      '--data',
      '/d',
      '--run',
      '/r',
      '--preset',
      'tiny',
    ]);
    expect(stageArgs('evaluate', { model: '/m', data: '/t.csv', run: '/r' })).toEqual([
      '--model',
      '/m',
      '--data',
      '/t.csv',
      '--run',
      '/r',
    ]);
    expect(stageArgs('finetune', { run: '/r', from: '/c', resume: true })).toEqual([
      '--run',
      '/r',
      '--from',
      '/c',
      '--resume',
    ]);
    expect(stageArgs('refinetune', { model: '/p', run: '/r', teacher: '/t', config: '/s.bert-pruner.json' })).toEqual([
      '--model',
      '/p',
      '--run',
      '/r',
      '--teacher',
      '/t',
      '--config',
      '/s.bert-pruner.json',
    ]);
  });

  it('offers the optional choices the registry declares: fine-tune --from, the teacher, settings files', () => {
    expect(offers('finetune').map((o) => o.flag)).toEqual(['from', 'config']);
    expect(offers('refinetune').map((o) => o.flag)).toEqual(['teacher', 'config']);
    for (const stage of STAGE_NAMES.filter((s) => REGISTRY[s].trains))
      expect(
        offers(stage).map((o) => o.ask),
        stage,
      ).toContain('settingsFile');
    expect(checkpointOption('finetune')).toBe('from');
    expect(checkpointOption('refinetune')).toBe('model');
    expect(checkpointOption('pipeline')).toBeUndefined();
  });

  it('fills defaults from the run: checkpoints, its test split, the prune output, its data, the teacher', () => {
    const dir = path.join(tmp, 'runs', 'a');
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'data', 'test.csv'), 'x');
    const run = runView(dir, {
      data: { dir: 'data/demo' },
      stages: {
        pretrain: { status: 'done', checkpoint: 'pretrain' },
        finetune: { status: 'done', checkpoint: 'finetune' },
        prune: { status: 'done', checkpoint: 'pruned' },
        refinetune: { status: 'failed', checkpoint: 'refinetune' },
      },
    });
    expect(withRunDefaults('prune', { run: dir }, run, tmp)).toEqual({
      run: dir,
      model: path.join(dir, 'finetune'),
      out: path.join(dir, 'pruned'),
    });
    expect(withRunDefaults('refinetune', { run: dir }, run, tmp)).toEqual({
      run: dir,
      model: path.join(dir, 'pruned'),
      teacher: path.join(dir, 'finetune'),
    });
    expect(withRunDefaults('finetune', { run: dir }, run, tmp).from).toBe(path.join(dir, 'pretrain'));
    expect(withRunDefaults('evaluate', { run: dir }, run, tmp).data).toBe(path.join(dir, 'data', 'test.csv'));
    expect(withRunDefaults('pipeline', { run: dir }, run, tmp).data).toBe(path.join(tmp, 'data', 'demo'));
    // What the user chose wins over defaults.
    expect(withRunDefaults('prune', { run: dir, model: '/m' }, run, tmp).model).toBe('/m');
    expect(withRunDefaults('prune', {}, undefined, tmp)).toEqual({});
    // Resuming: the stage's own arguments from the run, plus --resume; not for stages that do not resume.
    expect(resumeArgs('refinetune', run, tmp)).toEqual([
      '--model',
      path.join(dir, 'pruned'),
      '--run',
      dir,
      '--teacher',
      path.join(dir, 'finetune'),
      '--resume',
    ]);
    expect(resumeArgs('pipeline', run, tmp)).toEqual([
      '--data',
      path.join(tmp, 'data', 'demo'),
      '--run',
      dir,
      '--resume',
    ]);
    expect(resumeArgs('prune', run, tmp)).toBeUndefined();
  });

  it('saves an evaluation inside a checkpoint bert-pruner made, else in <workspace>/evaluations', () => {
    const ws = path.join(tmp, 'ws-eval');
    const ck = (dir: string, config: object) => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
      fs.writeFileSync(path.join(dir, 'model.safetensors'), '');
      return dir;
    };
    const inRun = ck(path.join(ws, 'runs', 'a', 'finetune'), {});
    fs.writeFileSync(path.join(ws, 'runs', 'a', 'run.json'), '{}');
    const ours = ck(path.join(ws, 'models', 'pruned'), { max_len: 64 });
    const foreign = ck(path.join(ws, 'models', 'hf bert'), { hidden_size: 8 });
    expect(evaluationFile(inRun, '/d/test.csv', ws)).toBe(path.join(inRun, 'eval-test.json'));
    expect(evaluationFile(ours, '/d/my data.csv', ws)).toBe(path.join(ours, 'eval-my_data.json'));
    expect(evaluationFile(foreign, '/d/test.csv', ws)).toBe(path.join(ws, 'evaluations', 'eval-hf_bert-test.json'));
    const out = evaluationFile(inRun, '/d/test.csv', ws);
    const args = stageArgs('evaluate', { model: inRun, data: '/d/test.csv', out });
    expect(args.slice(-2)).toEqual(['--out', path.join(inRun, 'eval-test.json')]);
    expect(parse('evaluate', args).out).toBe(path.join(inRun, 'eval-test.json'));
  });

  it('takes the run a checkpoint lives in', () => {
    const dir = path.join(tmp, 'runs', 'b');
    fs.mkdirSync(path.join(dir, 'finetune'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'run.json'), '{}');
    expect(inferRun('evaluate', { model: path.join(dir, 'finetune') })).toEqual({
      model: path.join(dir, 'finetune'),
      run: dir,
    });
    expect(inferRun('finetune', { from: path.join(dir, 'finetune') })).toEqual({
      from: path.join(dir, 'finetune'),
      run: dir,
    });
    expect(inferRun('evaluate', { model: path.join(tmp, 'elsewhere') })).toEqual({
      model: path.join(tmp, 'elsewhere'),
    });
    expect(inferRun('evaluate', { model: path.join(dir, 'finetune'), run: '/r' }).run).toBe('/r');
    // analyze takes no --run: nothing to infer.
    expect(inferRun('analyze', { model: path.join(dir, 'finetune') })).toEqual({ model: path.join(dir, 'finetune') });
  });
});

describe('progress text', () => {
  it('describes steps with percent and stage boundaries', () => {
    expect(
      describeProgress({
        type: 'step',
        stage: 'pretrain',
        epoch: 2,
        epochs: 4,
        step: 50,
        steps: 200,
        loss: 2.5,
        lr: 1e-3,
        tokensPerSecond: 10,
        etaSeconds: 75,
      }),
    ).toEqual({
      message: 'pretrain epoch 2/4 · step 50/200 · loss 2.5000 · ETA 1 min 15 s',
      percent: 25,
    });
    expect(describeProgress({ type: 'stage-start', stage: 'prune' })).toEqual({ message: 'prune', percent: 0 });
    expect(describeProgress({ type: 'log', level: 'info', message: 'x' })).toBeUndefined();
    expect(shortProgress('pretrain epoch 2/4 · step 50/200 · loss 2.5')).toBe('25%');
    expect(shortProgress('prune')).toBe('prune');
    expect(
      formatTable(
        'T',
        ['a', 'bb'],
        [
          ['x', 1.23456],
          ['yyy', 2],
        ],
      ).split('\n'),
    ).toEqual(['T', 'a    bb', '---  -----', 'x    1.235', 'yyy  2']);
  });
});

describe('package.json', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  const declared = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));

  it('declares every command the extension registers, under the BERT Pruner category', () => {
    const src = fs.readFileSync(path.join(__dirname, '..', 'src', 'extension', 'commands.ts'), 'utf8');
    const registered = [...src.matchAll(/reg\('(\w+)'/g)].map((m) => `bertPruner.${m[1]}`);
    // Every stage of the registry is registered by one loop over it.
    expect(src).toMatch(/for \(const stage of STAGE_NAMES\)/);
    registered.push(...STAGE_NAMES.map((s) => `bertPruner.${REGISTRY[s].command}`));
    expect(registered.length).toBeGreaterThan(15);
    expect(registered.filter((c) => !declared.has(c))).toEqual([]);
    expect([...declared].filter((c) => !registered.includes(c))).toEqual([]);
    expect(pkg.contributes.commands.every((c: { category: string }) => c.category === 'BERT Pruner')).toBe(true);
    // The stages' titles are numbered in the order they run: the palette lists them so.
    for (const title of [
      '1. Generate Corpus & Vocab',
      '2. Pretrain',
      '3. Fine-tune',
      '4. Prune',
      '5. Re-fine-tune',
      '6. Evaluate',
      'Analyze',
      'Run Pipeline',
      'Prune Sweep',
      'Cancel',
      'New Pruning Config',
      'Open Report',
      'Select Backend',
      'Create Demo Data',
    ]) {
      expect(
        pkg.contributes.commands.some((c: { title: string }) => c.title === title),
        title,
      ).toBe(true);
    }
  });

  it('menus refer to declared commands and their viewItem patterns match the tree', () => {
    const items = pkg.contributes.menus['view/item/context'] as { command: string; when: string }[];
    for (const m of items) expect(declared.has(m.command), m.command).toBe(true);
    const whenFor = (cmd: string) => items.filter((m) => m.command === cmd).map((m) => m.when);
    const matches = (when: string, value: string) =>
      [...when.matchAll(/viewItem =~ \/(.*?)\/(?=\s|\)|$)/g)].some((m) => new RegExp(m[1]).test(value)) ||
      [...when.matchAll(/viewItem == (\w+)/g)].some((m) => m[1] === value);
    const base = { metrics: {}, status: 'done' as const };
    const finetune = stageContextValue({ ...base, key: 'finetune', checkpoint: '/c' });
    const prune = stageContextValue({ ...base, key: 'prune', checkpoint: '/p', report: '/p/prune-report.json' });
    const failed = stageContextValue({ ...base, key: 'pretrain', status: 'failed' });
    expect(prune).toBe('stage:prune:done:checkpoint:report');
    expect(failed).toBe('stage:pretrain:failed:resumable');
    expect(stageContextValue({ ...base, key: 'prune', status: 'failed' })).toBe('stage:prune:failed');
    expect(whenFor('bertPruner.resume').some((w) => matches(w, failed))).toBe(true);
    expect(whenFor('bertPruner.resume').some((w) => matches(w, finetune))).toBe(false);
    expect(whenFor('bertPruner.predict').some((w) => matches(w, finetune))).toBe(true);
    expect(whenFor('bertPruner.finetune').some((w) => matches(w, 'checkpoint'))).toBe(true);
    expect(whenFor('bertPruner.evaluate').some((w) => matches(w, finetune))).toBe(true);
    expect(whenFor('bertPruner.evaluate').some((w) => matches(w, 'checkpoint'))).toBe(true);
    expect(whenFor('bertPruner.evaluate').some((w) => matches(w, failed))).toBe(false);
    expect(whenFor('bertPruner.refinetune').some((w) => matches(w, prune))).toBe(true);
    expect(whenFor('bertPruner.refinetune').some((w) => matches(w, finetune))).toBe(false);
    expect(whenFor('bertPruner.openReport').some((w) => matches(w, prune))).toBe(true);
    expect(whenFor('bertPruner.openReport').some((w) => matches(w, finetune))).toBe(false);
    // A pruned checkpoint offers Re-fine-tune; every checkpoint the other stages.
    expect(whenFor('bertPruner.refinetune').some((w) => matches(w, 'checkpoint:pruned'))).toBe(true);
    expect(whenFor('bertPruner.refinetune').some((w) => matches(w, 'checkpoint'))).toBe(false);
    expect(whenFor('bertPruner.evaluate').some((w) => matches(w, 'checkpoint:pruned'))).toBe(true);
    // A finished stage's next step, on its row (inline) and its checkpoint's.
    const next = stageContextValue({ ...base, key: 'finetune', checkpoint: '/c' }, { next: ['nextPrune'] });
    expect(next).toBe('stage:finetune:done:checkpoint:next-nextPrune');
    const inline = items.filter(
      (m) => m.command === 'bertPruner.nextPrune' && (m as { group?: string }).group === 'inline',
    );
    expect(inline.some((m) => matches(m.when, next))).toBe(true);
    expect(inline.some((m) => matches(m.when, 'checkpoint:next-nextPrune'))).toBe(true);
    expect(inline.some((m) => matches(m.when, finetune))).toBe(false);
    // A stage of a stopped pipeline resumes (the whole pipeline).
    const left = stageContextValue({ ...base, key: 'finetune', status: 'pending' }, { resumable: true });
    expect(whenFor('bertPruner.resume').some((w) => matches(w, left))).toBe(true);
  });

  it('wires the schemas for validation and the panels for restore', () => {
    expect(pkg.contributes.jsonValidation).toEqual([
      { fileMatch: '*.prune.json', url: './schemas/prune.schema.json' },
      { fileMatch: '*.bert-pruner.json', url: './schemas/settings.schema.json' },
    ]);
    for (const v of pkg.contributes.jsonValidation) expect(fs.existsSync(path.join(__dirname, '..', v.url))).toBe(true);
    for (const t of ['training', 'params', 'report'])
      expect(pkg.activationEvents).toContain(`onWebviewPanel:bertPruner.${t}`);
    expect(fs.existsSync(path.join(__dirname, '..', pkg.contributes.viewsContainers.activitybar[0].icon))).toBe(true);
  });
});

describe('backends: the setting, the picker, the label', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties;
  const src = (f: string) => fs.readFileSync(path.join(__dirname, '..', 'src', 'extension', f), 'utf8');

  it("bertPruner.backend offers every engine backend, webgpu after auto, each with backends.ts's description", () => {
    const b = props['bertPruner.backend'];
    expect(BACKEND_CHOICES).toEqual(BACKEND_NAMES);
    expect(b.enum).toEqual(BACKEND_NAMES);
    expect(b.enum.slice(0, 2)).toEqual(['auto', 'webgpu']);
    expect(b.enumDescriptions).toEqual(BACKEND_CHOICES.map((n) => BACKEND_DESCRIPTIONS[n]));
    expect(b.default).toBe('auto');
    // auto's order is the engine's: webgpu first.
    expect(BACKEND_DESCRIPTIONS.auto).toMatch(/webgpu .*tensorflow-gpu, tensorflow, wasm .*cpu/);
    expect(b.description).toMatch(/webgpu .*tensorflow-gpu, tensorflow, wasm, cpu/);
    expect(BACKEND_DESCRIPTIONS.webgpu).toMatch(/Dawn.*software adapter \(lavapipe/);
    expect(BACKEND_DESCRIPTIONS['tensorflow-gpu']).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    expect(BACKEND_DESCRIPTIONS.wasm).toMatch(/OpenBLAS/);
  });

  it('bertPruner.webgpuAdapter: a machine-overridable string, empty by default, not restricted', () => {
    const a = props['bertPruner.webgpuAdapter'];
    expect(a).toMatchObject({ type: 'string', default: '', scope: 'machine-overridable' });
    expect(a.description).toMatch(/BERT_PRUNER_WEBGPU_ADAPTER/);
    expect(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations).not.toContain('bertPruner.webgpuAdapter');
    // Read with the other settings, and handed to the engine's environment per run.
    expect(src('workspace.ts')).toMatch(/webgpuAdapter: c\.get<string>\('webgpuAdapter', ''\)/);
    expect(src('engineHost.ts')).toMatch(/engineEnv\(process\.env, \{ webgpuAdapter: settings\(\)\.webgpuAdapter \}\)/);
  });

  it('the Select Backend picker offers webgpu with its description, the current one marked', () => {
    const items = backendPickItems('webgpu');
    expect(items.map((i) => i.label)).toEqual(BACKEND_NAMES);
    expect(items.find((i) => i.label === 'webgpu')).toEqual({
      label: 'webgpu',
      detail: BACKEND_DESCRIPTIONS.webgpu,
      description: 'current',
    });
    expect(items.filter((i) => i.description === 'current')).toHaveLength(1);
    expect(items.every((i) => i.detail.length > 10)).toBe(true);
    expect(src('commands.ts')).toMatch(/showQuickPick\(backendPickItems\(settings\(\)\.backend\)/);
    expect(backendPickedMessage('webgpu')).toMatch(/adapter in use shows in the status bar and the Output/);
    expect(backendPickedMessage('wasm')).toBe('BERT Pruner: the next runs use the wasm backend.');
  });

  it('shortens the backend label for the status bar and the Runs view, the whole label in the tooltips', () => {
    expect(shortBackendLabel('webgpu (NVIDIA H200)')).toBe('webgpu: NVIDIA H200');
    expect(shortBackendLabel('wasm+openblas')).toBe('wasm+openblas');
    expect(shortBackendLabel('webgpu (llvmpipe (LLVM 19.1.7, 256 bits))')).toBe('webgpu: llvmpipe');
    expect(shortBackendLabel('webgpu (llvmpipe: Mesa 25.0.7 (LLVM 19.1.7))')).toBe('webgpu: llvmpipe: Mesa 25.0.7');
    const long = shortBackendLabel('webgpu (NVIDIA GeForce RTX 4090 Laptop GPU)');
    expect(long).toBe('webgpu: NVIDIA GeForce RTX 40…');
    expect(long.length).toBeLessThanOrEqual(30);
    expect(shortBackendLabel('x'.repeat(500)).length).toBe(30);

    const run = { stage: 'pretrain', title: 'Pretrain runs/q', progress: 'pretrain epoch 1/2 · step 5/10 · loss 1' };
    const withGpu = statusBarText([{ ...run, backend: 'webgpu (NVIDIA H200)' }]);
    expect(withGpu.text).toBe('$(sync~spin) pretrain: 50% · webgpu: NVIDIA H200');
    expect(withGpu.tooltip).toBe(
      `Pretrain runs/q: ${run.progress}\nbackend: webgpu (NVIDIA H200)\n` +
        "Click to show the log; Cancel is in the Runs view's title bar.",
    );
    const soft = 'webgpu (llvmpipe (LLVM 19.1.7, 256 bits))';
    const two = statusBarText([
      { ...run, overall: 42.7, backend: soft },
      { ...run, title: 'B', progress: 'prune' },
    ]);
    expect(two.text).toBe('$(sync~spin) pretrain (+1): 42% · 50% · webgpu: llvmpipe');
    expect(two.tooltip).toContain(`backend: ${soft}`);
    expect(statusBarText([run]).text).toBe('$(sync~spin) pretrain: 50%');
    expect(src('engineHost.ts')).toMatch(/active\.backend = event\.backend/);

    const v = runView('/ws/runs/g', { name: 'g', backend: soft, stages: {} });
    expect(runTooltip(v, 'runs/g').split('\n')).toContain(`backend: ${soft}`);
    expect(src('runsTree.ts')).toMatch(/r\.backend && shortBackendLabel\(r\.backend\)/);
  });
});

describe('a refused output', () => {
  it('offers --force when the engine names it, and not twice', () => {
    const msg =
      'hf: exists and is not a checkpoint made by bert-pruner; refusing to replace it ' +
      '(choose another --out, or pass --force to replace it)';
    expect(offersForce(msg, ['--model', 'm'])).toBe(true);
    expect(offersForce(msg, ['--model', 'm', '--force'])).toBe(false);
    expect(offersForce('train.csv:3: bad row', [])).toBe(false);
  });
});
