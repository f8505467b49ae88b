// Adding a stage or a setting is one row: a toy pipeline stage (a registry entry with a pipeline
// row, and its loader) and a toy setting (a field of the settings table), added in memory, reach
// the CLI (overview, --help, parsing), the JSON Schema the engine validates with, the settings a
// stage gets, and the pipeline (its stages, run.json keys, folders, status-bar steps, and a run
// that calls the toy step with its row's folders and records it).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SECTIONS } from '../src/engine/config/fields';
import { LOADERS } from '../src/engine/stages/loaders';
import { REGISTRY, type PipelineStep, type StageDef, type StepInput } from '../src/engine/stages/registry';

const TOY: StageDef = {
  title: 'Toy',
  summary: 'a toy stage after re-fine-tuning',
  command: 'toy',
  icon: 'beaker',
  options: { run: { type: 'string', value: 'RUN', help: 'the run folder', required: true, ask: 'run' } },
  settings: 'finetune',
  trains: false,
  resumable: false,
  backend: false,
  tree: ['none'],
  pipeline: { from: 'refinetune', out: 'toy', onlyWhenPruning: true },
};
const calls: StepInput[] = [];
/** Every pipeline stage's step, faked: it makes its folder and notes its input. */
const fake: PipelineStep = async (i) => {
  calls.push(i);
  if (i.out) fs.mkdirSync(i.out, { recursive: true });
  return { metrics: { knob: (i.settings.finetune as Record<string, unknown>).toy_knob as number } };
};

// In memory only: the registry, the loaders and the settings table, before the modules that read
// them at load (commands, validation, presets) are imported below.
const registry = REGISTRY as unknown as Record<string, StageDef>;
registry.toy = TOY;
(LOADERS as Record<string, unknown>).toy = async () => ({
  run: async () => ({ result: 'toy', text: 'toy ran' }),
  step: fake,
});
(SECTIONS.finetune.fields as Record<string, unknown>).toy_knob = {
  type: 'integer',
  minimum: 1,
  maximum: 9,
  default: 3,
  description: 'A toy setting.',
};
const { overview, parse, runCommand } = await import('../src/engine/commands');
const { settingsSchema } = await import('../src/engine/config/schemas');
const { validateConfig } = await import('../src/engine/config/validate');
const { resolveSettings } = await import('../src/engine/config/settings');
const { pipelineOutputs, pipelineStages, runStageKeys, stageDef, stageFolders } =
  await import('../src/engine/stages/registry');

describe('a toy row', () => {
  it('reaches the CLI: overview, --help, parsing', async () => {
    expect(overview()).toMatch(/\n {2}toy +a toy stage after re-fine-tuning\n/);
    const help = await runCommand('toy', ['--help'], { emit: () => {} });
    expect(help.text).toContain('bert-pruner toy: a toy stage after re-fine-tuning');
    expect(help.text).toContain('usage: bert-pruner toy --run RUN');
    expect(parse('toy' as never, ['--run', 'r'])).toMatchObject({ run: 'r' });
  });

  it('reaches the schema, its validation and the resolved settings', () => {
    const finetune = (settingsSchema().properties as Record<string, { properties: Record<string, unknown> }>).finetune;
    expect(finetune.properties.toy_knob).toEqual({
      type: 'integer',
      minimum: 1,
      maximum: 9,
      default: 3,
      description: 'A toy setting.',
    });
    expect(() => validateConfig('settings', { finetune: { toy_knob: 5 } }, 'x.json')).not.toThrow();
    expect(() => validateConfig('settings', { finetune: { toy_knob: 10 } }, 'x.json')).toThrow(
      /^x\.json: \/finetune\/toy_knob: must be .*<= 9/,
    );
    const knob = (o?: unknown) => (resolveSettings('tiny', o).finetune as Record<string, unknown>).toy_knob;
    expect(knob({ finetune: { toy_knob: 5 } })).toBe(5);
    expect(knob()).toBe(3); // the table's default, in every preset that does not set it
  });

  it('reaches the pipeline: its stages, run.json keys, outputs and status-bar steps', () => {
    expect(pipelineStages().at(-1)).toBe('toy');
    expect(runStageKeys().at(-1)).toBe('toy');
    expect(stageDef('pipeline').steps?.at(-1)).toBe('toy');
    expect(pipelineOutputs('/r')).toContain(path.join('/r', 'toy'));
  });

  it('is run by the pipeline after its `from` stage, with its folders, and recorded in run.json', async () => {
    // The other stages' steps are faked too, and nothing is evaluated: this checks the loop.
    const saved = new Map<string, unknown>();
    for (const s of pipelineStages()) {
      saved.set(s, { row: registry[s].pipeline, loader: (LOADERS as Record<string, unknown>)[s] });
      registry[s] = { ...registry[s], pipeline: { ...registry[s].pipeline, evaluated: undefined } };
      (LOADERS as Record<string, unknown>)[s] = async () => ({ run: async () => ({ result: null }), step: fake });
    }
    try {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-toy-'));
      fs.mkdirSync(path.join(d, 'data'));
      const run = path.join(d, 'run');
      const args = ['--data', path.join(d, 'data'), '--run', run, '--preset', 'tiny', '--backend', 'cpu'];
      await runCommand('pipeline', [...args, '--config', writeJson(d, { finetune: { toy_knob: 7 } })], {
        emit: () => {},
      });
      // every pipeline stage in the table's order, each given its row's folder; the toy last
      expect(calls.map((c) => c.out)).toEqual(pipelineStages().map((st) => stageFolders(run, st).out));
      expect(calls.at(-1)!.out).toBe(path.join(run, 'toy'));
      const toy = calls.at(-1)!;
      expect(toy.from).toBe(path.join(run, 'refinetune'));
      expect((toy.settings.finetune as Record<string, unknown>).toy_knob).toBe(7);
      const m = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
      expect(m.stages.toy).toMatchObject({ status: 'done', metrics: { knob: 7 } });
      // --resume skips what is done
      calls.length = 0;
      await runCommand('pipeline', [...args, '--resume'], { emit: () => {} });
      expect(calls).toEqual([]);
    } finally {
      for (const [s, v] of saved) {
        const { row, loader } = v as { row: StageDef['pipeline']; loader: unknown };
        registry[s] = { ...registry[s], pipeline: row };
        (LOADERS as Record<string, unknown>)[s] = loader;
      }
    }
  });
});

function writeJson(dir: string, v: unknown): string {
  const f = path.join(dir, 'toy.bert-pruner.json');
  fs.writeFileSync(f, JSON.stringify(v));
  return f;
}
